// Package client calls services: it selects a node through the selector,
// encodes the request with the codec of the call's content type, sends it
// over the transport, and decodes the response or the error.
package client

import (
	"context"
	"time"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/selector"
)

// Defaults of a Client.
const (
	DefaultContentType    = "application/json"
	DefaultRequestTimeout = 5 * time.Second
	DefaultRetries        = 1
)

// Client calls services. It is safe for concurrent use.
type Client struct {
	opts Options
}

// Options configure a Client.
type Options struct {
	Registry       registry.Registry
	Selector       selector.Selector
	ContentType    string
	RequestTimeout time.Duration
	// Retries is how many more nodes a call may try when retrying is safe
	// (the request never reached a server, or the call is idempotent).
	Retries int
}

// Option sets an Options field.
type Option func(*Options)

// Registry sets the registry the default selector reads.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Selector sets the selector (default: random over Registry).
func Selector(s selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// ContentType sets the default content type of calls.
func ContentType(ct string) Option { return func(o *Options) { o.ContentType = ct } }

// RequestTimeout sets the default timeout of one call (all its tries).
func RequestTimeout(d time.Duration) Option { return func(o *Options) { o.RequestTimeout = d } }

// Retries sets the default number of retries where retrying is safe.
func Retries(n int) Option { return func(o *Options) { o.Retries = n } }

// CallOptions are the options of one call.
type CallOptions struct {
	Address        string
	ContentType    string
	RequestTimeout time.Duration
	Retries        int
	Idempotent     bool
}

// CallOption sets a CallOptions field.
type CallOption func(*CallOptions)

// WithAddress sends the call to this node address (host:port), bypassing the
// selector.
func WithAddress(addr string) CallOption { return func(o *CallOptions) { o.Address = addr } }

// WithContentType sets the call's content type.
func WithContentType(ct string) CallOption { return func(o *CallOptions) { o.ContentType = ct } }

// WithRequestTimeout sets the call's timeout.
func WithRequestTimeout(d time.Duration) CallOption {
	return func(o *CallOptions) { o.RequestTimeout = d }
}

// WithRetries sets the call's retries.
func WithRetries(n int) CallOption { return func(o *CallOptions) { o.Retries = n } }

// Idempotent marks the call safe to retry even after it may have reached a
// server.
func Idempotent() CallOption { return func(o *CallOptions) { o.Idempotent = true } }

// New returns a Client.
func New(opts ...Option) *Client {
	// TODO(framework): defaults, selector, transport.
	c := &Client{opts: Options{ContentType: DefaultContentType, RequestTimeout: DefaultRequestTimeout, Retries: DefaultRetries}}
	for _, o := range opts {
		o(&c.opts)
	}
	return c
}

// Call calls endpoint ("Say.Hello") of service with req and decodes the
// answer into rsp. req and rsp are protobuf messages or, with JSON, any Go
// values (json.RawMessage passes JSON through). The metadata of ctx
// (package metadata) travels with the call. A failed call returns an
// *errors.Error (package framework/errors).
func (c *Client) Call(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error {
	panic("TODO(framework): Client.Call")
}
