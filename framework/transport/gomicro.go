package transport

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file holds what the transport speaks to and from go-micro: its
// headers, and the old framings of go-micro before v0.22 (2018 and
// earlier), which carry the method and a sequence number in the body.

// Header names of go-micro's wire, which the transport accepts and, towards
// go-micro nodes, sends (see the package documentation).
const (
	// HeaderMethod is go-micro's name for the endpoint ("Say.Hello").
	HeaderMethod = "Micro-Method"
	// HeaderID is go-micro's request id (its client's sequence number).
	HeaderID = "Micro-Id"
	// HeaderGoMicroTimeout is go-micro's timeout of the call, in
	// nanoseconds.
	HeaderGoMicroTimeout = "Timeout"
)

// Content types of go-micro's old framings.
const (
	ContentTypeProtoRPC = "application/proto-rpc"
	ContentTypeJSONRPC  = "application/json-rpc"
)

// Framing is how the body of a call and of its answer are laid out.
type Framing uint8

// The framings.
const (
	// FramingPlain: the body is the encoded message, nothing else
	// (microbot, and go-micro since v0.22, which registers its nodes with
	// protocol=mucp).
	FramingPlain Framing = iota
	// FramingProtoRPC is go-micro's old protobuf framing (Content-Type
	// application/proto-rpc, or application/protobuf or
	// application/octet-stream without the Micro-* headers): two
	// length-prefixed pieces (4 bytes, big-endian), an envelope
	// {1: method, 2: fixed64 sequence} (an answer's adds 3: error) and the
	// message.
	FramingProtoRPC
	// FramingJSONRPC is go-micro's old JSON framing (Content-Type
	// application/json-rpc, or application/json without the Micro-*
	// headers): JSON-RPC 1.0, {"method", "params": [message], "id"}
	// answered by {"id", "result", "error"}.
	FramingJSONRPC
)

// String returns the framing's content type, or "plain".
func (f Framing) String() string {
	switch f {
	case FramingProtoRPC:
		return ContentTypeProtoRPC
	case FramingJSONRPC:
		return ContentTypeJSONRPC
	}
	return "plain"
}

// payloadType is the content type of the message inside a framed body.
func (f Framing) payloadType() string {
	if f == FramingJSONRPC {
		return "application/json"
	}
	return "application/protobuf"
}

// mediaType returns the media type of a Content-Type value: lower case,
// without parameters.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	for i := 0; i < len(mt); i++ {
		if c := mt[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(mt)
		}
	}
	return mt
}

// oldFraming returns the framing of go-micro before v0.22 that a request
// with this Content-Type uses when it names no service, endpoint or method
// in its header (go-micro's servers decide the same way).
func oldFraming(ct string) (Framing, bool) {
	switch mediaType(ct) {
	case ContentTypeProtoRPC, "application/protobuf", "application/octet-stream":
		return FramingProtoRPC, true
	case ContentTypeJSONRPC, "application/json":
		return FramingJSONRPC, true
	}
	return FramingPlain, false
}

// appendNetString appends data with its 4-byte big-endian length before it.
func appendNetString(b, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// nextNetString splits a length-prefixed piece off b.
func nextNetString(b []byte) (piece, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("proto-rpc: %d bytes where a 4-byte length was expected", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("proto-rpc: a piece of %d bytes with %d left", n, len(b)-4)
	}
	return b[4 : 4+n], b[4+n:], nil
}

// envelope is the head of a proto-rpc message (go-micro's
// codec/protorpc/envelope.proto, proto2): the method, the sequence number
// and, in answers, the error.
type envelope struct {
	method string
	seq    uint64
	err    string
}

// appendProtoRPC appends a proto-rpc message: the envelope (error included
// when answer is true, as go-micro writes it even when empty) and the
// message.
func appendProtoRPC(b []byte, env envelope, answer bool, msg []byte) []byte {
	var head []byte
	head = protowire.AppendTag(head, 1, protowire.BytesType)
	head = protowire.AppendString(head, env.method)
	head = protowire.AppendTag(head, 2, protowire.Fixed64Type)
	head = protowire.AppendFixed64(head, env.seq)
	if answer {
		head = protowire.AppendTag(head, 3, protowire.BytesType)
		head = protowire.AppendString(head, env.err)
	}
	b = appendNetString(b, head)
	return appendNetString(b, msg)
}

// parseProtoRPC splits a proto-rpc message into its envelope and message.
func parseProtoRPC(b []byte) (envelope, []byte, error) {
	var env envelope
	head, rest, err := nextNetString(b)
	if err != nil {
		return env, nil, err
	}
	msg, _, err := nextNetString(rest)
	if err != nil {
		return env, nil, err
	}
	for len(head) > 0 {
		num, typ, n := protowire.ConsumeTag(head)
		if n < 0 {
			return env, nil, fmt.Errorf("proto-rpc envelope: %w", protowire.ParseError(n))
		}
		head = head[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, m := protowire.ConsumeString(head)
			env.method, n = v, m
		case num == 2 && typ == protowire.Fixed64Type:
			v, m := protowire.ConsumeFixed64(head)
			env.seq, n = v, m
		case num == 3 && typ == protowire.BytesType:
			v, m := protowire.ConsumeString(head)
			env.err, n = v, m
		default:
			n = protowire.ConsumeFieldValue(num, typ, head)
		}
		if n < 0 {
			return env, nil, fmt.Errorf("proto-rpc envelope: %w", protowire.ParseError(n))
		}
		head = head[n:]
	}
	return env, msg, nil
}

// jsonRPCRequest is a JSON-RPC 1.0 request as go-micro's jsonrpc codec
// writes it.
type jsonRPCRequest struct {
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	ID     json.RawMessage   `json:"id"`
}

// jsonRPCAnswer is a JSON-RPC 1.0 answer.
type jsonRPCAnswer struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// appendJSONRPCRequest appends a JSON-RPC request of method with params
// (the JSON message) and the numeric id seq.
func appendJSONRPCRequest(b []byte, method string, seq uint64, params []byte) []byte {
	b = append(b, `{"method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"params":[`...)
	b = append(b, params...)
	b = append(b, `],"id":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, "}\n"...)
}

// appendJSONRPCAnswer appends a JSON-RPC answer to the request of id: the
// result, or null and the error text.
func appendJSONRPCAnswer(b []byte, id, result []byte, errText string) []byte {
	if len(id) == 0 {
		id = []byte("null")
	}
	b = append(b, `{"id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	if errText != "" || len(result) == 0 {
		b = append(b, `null,"error":`...)
		if errText == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, errText)
		}
	} else {
		b = append(b, result...)
		b = append(b, `,"error":null`...)
	}
	return append(b, "}\n"...)
}

func appendJSONString(b []byte, s string) []byte {
	js, _ := json.Marshal(s) // a string always marshals
	return append(b, js...)
}

// parseJSONRPCRequest returns the method, id and message of a JSON-RPC
// request.
func parseJSONRPCRequest(b []byte) (method string, id, msg []byte, err error) {
	var r jsonRPCRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return "", nil, nil, fmt.Errorf("json-rpc request: %w", err)
	}
	if len(r.Params) != 1 {
		return r.Method, r.ID, nil, fmt.Errorf("json-rpc request: %d params, want the one message", len(r.Params))
	}
	return r.Method, r.ID, r.Params[0], nil
}

// errJSONRPCError is the error of an answer whose "error" is not a string
// (go-micro's client refuses those too).
var errJSONRPCError = errors.New("json-rpc answer: error that is not a string")

// parseJSONRPCAnswer returns the result and error text of a JSON-RPC
// answer.
func parseJSONRPCAnswer(b []byte) (result []byte, errText string, err error) {
	var a jsonRPCAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, "", fmt.Errorf("json-rpc answer: %w", err)
	}
	if len(a.Error) > 0 && string(a.Error) != "null" {
		if err := json.Unmarshal(a.Error, &errText); err != nil {
			return nil, "", fmt.Errorf("%w: %.100s", errJSONRPCError, a.Error)
		}
		if errText == "" {
			errText = "unspecified error"
		}
	}
	return a.Result, errText, nil
}
