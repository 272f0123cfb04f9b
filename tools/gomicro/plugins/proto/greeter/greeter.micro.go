// Code written by hand in the shape protoc-gen-micro v1 generated in 2019
// (protoc-gen-micro itself is not obtainable from this environment's module
// proxy); see go-micro v1.8.0's agent/proto/bot.micro.go for the original.
// source: greeter.proto

package go_micro_srv_greeter

import (
	context "context"

	client "github.com/micro/go-micro/client"
	server "github.com/micro/go-micro/server"
)

// Reference imports to suppress errors if they are not otherwise used.
var _ context.Context
var _ client.Option
var _ server.Option

// Client API for Say service

// SayService is the client of the Say service: one method per endpoint.
type SayService interface {
	Hello(ctx context.Context, in *Request, opts ...client.CallOption) (*Response, error)
	Fail(ctx context.Context, in *FailRequest, opts ...client.CallOption) (*Response, error)
	Count(ctx context.Context, in *CountRequest, opts ...client.CallOption) (*CountResponse, error)
}

type sayService struct {
	c    client.Client
	name string
}

// NewSayService returns the client of the Say service of the service name
// (go.micro.srv.greeter when empty), calling through c (go-micro's default
// client when nil).
func NewSayService(name string, c client.Client) SayService {
	if c == nil {
		c = client.NewClient()
	}
	if len(name) == 0 {
		name = "go.micro.srv.greeter"
	}
	return &sayService{
		c:    c,
		name: name,
	}
}

func (c *sayService) Hello(ctx context.Context, in *Request, opts ...client.CallOption) (*Response, error) {
	req := c.c.NewRequest(c.name, "Say.Hello", in)
	out := new(Response)
	err := c.c.Call(ctx, req, out, opts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *sayService) Fail(ctx context.Context, in *FailRequest, opts ...client.CallOption) (*Response, error) {
	req := c.c.NewRequest(c.name, "Say.Fail", in)
	out := new(Response)
	err := c.c.Call(ctx, req, out, opts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *sayService) Count(ctx context.Context, in *CountRequest, opts ...client.CallOption) (*CountResponse, error) {
	req := c.c.NewRequest(c.name, "Say.Count", in)
	out := new(CountResponse)
	err := c.c.Call(ctx, req, out, opts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Server API for Say service

// SayHandler is what a server of the Say service implements.
type SayHandler interface {
	Hello(context.Context, *Request, *Response) error
	Fail(context.Context, *FailRequest, *Response) error
	Count(context.Context, *CountRequest, *CountResponse) error
}

// RegisterSayHandler registers hdlr with s as the Say service's handler.
func RegisterSayHandler(s server.Server, hdlr SayHandler, opts ...server.HandlerOption) error {
	type say interface {
		Hello(ctx context.Context, in *Request, out *Response) error
		Fail(ctx context.Context, in *FailRequest, out *Response) error
		Count(ctx context.Context, in *CountRequest, out *CountResponse) error
	}
	type Say struct {
		say
	}
	h := &sayHandler{hdlr}
	return s.Handle(s.NewHandler(&Say{h}, opts...))
}

type sayHandler struct {
	SayHandler
}

func (h *sayHandler) Hello(ctx context.Context, in *Request, out *Response) error {
	return h.SayHandler.Hello(ctx, in, out)
}

func (h *sayHandler) Fail(ctx context.Context, in *FailRequest, out *Response) error {
	return h.SayHandler.Fail(ctx, in, out)
}

func (h *sayHandler) Count(ctx context.Context, in *CountRequest, out *CountResponse) error {
	return h.SayHandler.Count(ctx, in, out)
}
