// Package proto holds the messages the go-micro v0.10.0 programs exchange:
// the greeter's (go.micro.srv.greeter) and the bot's Command service's
// (go.micro.bot.Command of microbot's proto/bot/bot.proto, as the
// go-bot/proto package of 2018 defined them).
//
// They are written by hand in the form protoc-gen-go of 2018 gave
// messages (a struct with protobuf field tags, Reset, String and
// ProtoMessage), which golang/protobuf v1.2 encodes by reflection: neither
// protoc-gen-go of that time nor github.com/micro/go-bot is obtainable from
// this environment's module proxy.
package proto

import "github.com/golang/protobuf/proto"

// Request is the request of Say.Hello.
type Request struct {
	Name string `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
}

// Reset clears m.
func (m *Request) Reset() { *m = Request{} }

// String returns m in protobuf's compact text format.
func (m *Request) String() string { return proto.CompactTextString(m) }

// ProtoMessage marks Request as a protobuf message.
func (*Request) ProtoMessage() {}

// Response is the response of Say.Hello.
type Response struct {
	Msg string `protobuf:"bytes,1,opt,name=msg,proto3" json:"msg,omitempty"`
}

// Reset clears m.
func (m *Response) Reset() { *m = Response{} }

// String returns m in protobuf's compact text format.
func (m *Response) String() string { return proto.CompactTextString(m) }

// ProtoMessage marks Response as a protobuf message.
func (*Response) ProtoMessage() {}

// HelpRequest is the request of Command.Help.
type HelpRequest struct{}

// Reset clears m.
func (m *HelpRequest) Reset() { *m = HelpRequest{} }

// String returns m in protobuf's compact text format.
func (m *HelpRequest) String() string { return proto.CompactTextString(m) }

// ProtoMessage marks HelpRequest as a protobuf message.
func (*HelpRequest) ProtoMessage() {}

// HelpResponse is the response of Command.Help.
type HelpResponse struct {
	Usage       string `protobuf:"bytes,1,opt,name=usage,proto3" json:"usage,omitempty"`
	Description string `protobuf:"bytes,2,opt,name=description,proto3" json:"description,omitempty"`
}

// Reset clears m.
func (m *HelpResponse) Reset() { *m = HelpResponse{} }

// String returns m in protobuf's compact text format.
func (m *HelpResponse) String() string { return proto.CompactTextString(m) }

// ProtoMessage marks HelpResponse as a protobuf message.
func (*HelpResponse) ProtoMessage() {}

// ExecRequest is the request of Command.Exec.
type ExecRequest struct {
	Args []string `protobuf:"bytes,1,rep,name=args,proto3" json:"args,omitempty"`
}

// Reset clears m.
func (m *ExecRequest) Reset() { *m = ExecRequest{} }

// String returns m in protobuf's compact text format.
func (m *ExecRequest) String() string { return proto.CompactTextString(m) }

// ProtoMessage marks ExecRequest as a protobuf message.
func (*ExecRequest) ProtoMessage() {}

// ExecResponse is the response of Command.Exec.
type ExecResponse struct {
	Result []byte `protobuf:"bytes,1,opt,name=result,proto3" json:"result,omitempty"`
	Error  string `protobuf:"bytes,2,opt,name=error,proto3" json:"error,omitempty"`
}

// Reset clears m.
func (m *ExecResponse) Reset() { *m = ExecResponse{} }

// String returns m in protobuf's compact text format.
func (m *ExecResponse) String() string { return proto.CompactTextString(m) }

// ProtoMessage marks ExecResponse as a protobuf message.
func (*ExecResponse) ProtoMessage() {}
