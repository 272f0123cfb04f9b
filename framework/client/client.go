// Package client calls services: it selects a node through the selector,
// encodes the request with the codec of the call's content type, sends it
// over the transport, and decodes the response or the error.
//
// Every failure is an *rpcerr.Error (package framework/rpcerr) whose detail
// says what went wrong:
//
//	404  service go.micro.srv.x: not found          (nothing registered under that name)
//	404  unknown endpoint Foo.Bar of service X       (from the server)
//	408  call to X Foo.Bar timed out after 5s
//	503  call to X Foo.Bar: node 127.0.0.1:4000 unreachable: ... connection refused
//
// plus what the server answered (400 malformed request, 413, 415, 500, ...).
//
// A call is retried on another node only when that is safe: the request
// certainly never reached a server (the connection could not be made), or
// the caller marked the call [WithIdempotent]. A server's answer, even an error,
// is never retried.
package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/codec"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/framework/selector"
	"github.com/microbot/microbot/framework/transport"
)

// Defaults of a Client.
const (
	DefaultContentType    = "application/json"
	DefaultRequestTimeout = 5 * time.Second
	DefaultRetries        = 1
	DefaultPoolSize       = transport.DefaultMaxIdleConnsPerHost
)

// errorID is the id of the errors the client itself produces.
const errorID = "go.micro.client"

// Client calls services. It is safe for concurrent use.
type Client struct {
	opts   Options
	sel    selector.Selector // opts.Selector, or one built over opts.Registry
	ownSel bool              // sel was built here and is closed by Close
	tr     *transport.Client
	call   CallFunc // do wrapped in opts.Wrappers
}

// Options configure a Client.
type Options struct {
	// CallOptions are the defaults of every call; the options given to a
	// call override them.
	CallOptions
	// Registry is read by the selector the client builds when Selector is
	// nil.
	Registry registry.Registry
	// Selector picks the nodes of calls (default: random over Registry).
	Selector selector.Selector
	// PoolSize is how many idle keep-alive connections are kept per node;
	// it should be at least the number of concurrent calls to one node.
	PoolSize int
	// Wrappers wrap every call (see [WithCallWrappers]); the first is the
	// outermost.
	Wrappers []CallWrapper
	// Broker is where Publish sends messages.
	Broker broker.Broker
}

// Option sets an Options field.
type Option func(*Options)

// WithRegistry sets the registry the default selector reads.
func WithRegistry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// WithSelector sets the selector (default: random over the registry).
func WithSelector(s selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// WithDefaultCallOptions sets the defaults of every call (content type,
// timeout, retries, ...); the options given to a call override them.
func WithDefaultCallOptions(opts ...CallOption) Option {
	return func(o *Options) {
		for _, f := range opts {
			f(&o.CallOptions)
		}
	}
}

// WithBroker sets the broker Publish sends messages to.
func WithBroker(b broker.Broker) Option { return func(o *Options) { o.Broker = b } }

// WithPoolSize sets how many idle connections are kept per node.
func WithPoolSize(n int) Option { return func(o *Options) { o.PoolSize = n } }

// CallFunc is the signature of [Client.Call]; a [CallWrapper] wraps one.
type CallFunc func(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error

// CallWrapper wraps the calls of a Client, to observe them (metrics,
// tracing, logs) or to change them. It returns a CallFunc that calls next.
type CallWrapper func(next CallFunc) CallFunc

// WithCallWrappers adds wrappers around every call the client makes; the
// first given is the outermost.
func WithCallWrappers(w ...CallWrapper) Option {
	return func(o *Options) { o.Wrappers = append(slices.Clip(o.Wrappers), w...) }
}

// CallOptions are the options of one call.
type CallOptions struct {
	// Address sends the call to this node (host:port), bypassing the
	// selector.
	Address string
	// Node sends the call to this node, bypassing the selector, in the
	// dialect its metadata says it speaks (see [WithNode]).
	Node *registry.Node
	// ContentType is the encoding of the request and the response.
	ContentType string
	// RequestTimeout bounds the call, all its tries together.
	RequestTimeout time.Duration
	// Retries is how many more nodes a call may try when retrying is safe
	// (the request never reached a server, or the call is idempotent).
	Retries int
	// Idempotent marks the call safe to retry even after it may have
	// reached a server.
	Idempotent bool
}

// CallOption sets a CallOptions field.
type CallOption func(*CallOptions)

// WithAddress sends the call to this node address (host:port), bypassing the
// selector.
func WithAddress(addr string) CallOption { return func(o *CallOptions) { o.Address = addr } }

// WithNode sends the call to this node, bypassing the selector, speaking to
// it as its metadata says, as to a node the selector picks: microbot's wire
// to a microbot node, go-micro v1's to a node with protocol=mucp, go-micro's
// old framing to any other go-micro node.
func WithNode(n *registry.Node) CallOption { return func(o *CallOptions) { o.Node = n } }

// WithContentType sets the call's content type: application/json or
// application/protobuf (the framing follows the node), or one of go-micro's
// old framings, application/json-rpc or application/proto-rpc, to force it.
func WithContentType(ct string) CallOption { return func(o *CallOptions) { o.ContentType = ct } }

// WithRequestTimeout sets the call's timeout.
func WithRequestTimeout(d time.Duration) CallOption {
	return func(o *CallOptions) { o.RequestTimeout = d }
}

// WithRetries sets the call's retries.
func WithRetries(n int) CallOption { return func(o *CallOptions) { o.Retries = n } }

// WithIdempotent marks the call safe to retry even after it may have
// reached a server.
func WithIdempotent() CallOption { return func(o *CallOptions) { o.Idempotent = true } }

// New returns a Client configured by opts. It fails if an option is out of
// range or names a content type no codec speaks.
func New(opts ...Option) (*Client, error) {
	o := Options{
		CallOptions: CallOptions{
			ContentType:    DefaultContentType,
			RequestTimeout: DefaultRequestTimeout,
			Retries:        DefaultRetries,
		},
		PoolSize: DefaultPoolSize,
	}
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.RequestTimeout < 0:
		return nil, fmt.Errorf("client: negative request timeout %v", o.RequestTimeout)
	case o.Retries < 0:
		return nil, fmt.Errorf("client: negative retries %d", o.Retries)
	case o.PoolSize < 0:
		return nil, fmt.Errorf("client: negative pool size %d", o.PoolSize)
	}
	if _, err := codec.For(o.ContentType); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		opts: o,
		sel:  o.Selector,
		tr:   transport.NewClient(transport.WithMaxIdleConnsPerHost(o.PoolSize)),
	}
	if c.sel == nil && o.Registry != nil {
		c.sel, c.ownSel = selector.New(o.Registry), true
	}
	c.call = c.do
	for i := len(o.Wrappers) - 1; i >= 0; i-- {
		c.call = o.Wrappers[i](c.call)
	}
	return c, nil
}

// Options returns a copy of the client's options.
func (c *Client) Options() Options { return c.opts }

// Close closes the selector the client built and the idle connections.
func (c *Client) Close() error {
	if c.ownSel {
		c.sel.Close() //nolint:errcheck // nothing to do about it
	}
	return c.tr.Close()
}

// Call calls endpoint ("Say.Hello") of service with req and decodes the
// answer into rsp (nil: the answer is dropped). req and rsp are protobuf
// messages or, with JSON, any Go values (json.RawMessage passes JSON
// through). The metadata of ctx (package metadata) travels with the call,
// and so does its deadline or the call's timeout, whichever is sooner. A
// failed call returns an *rpcerr.Error (package framework/rpcerr). The
// wrappers given with [WithCallWrappers] see the call first.
func (c *Client) Call(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error {
	return c.call(ctx, service, endpoint, req, rsp, opts...)
}

// do is Call without the wrappers.
func (c *Client) do(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error {
	sel := c.sel
	co := c.opts.CallOptions
	for _, f := range opts {
		f(&co)
	}
	call := callName{service, endpoint}

	cd, err := codec.For(co.ContentType)
	if err != nil {
		return rpcerr.UnsupportedMediaType(errorID, "call to %s: unsupported content type %q; supported: %s", call, co.ContentType, codec.Supported())
	}
	body, err := cd.Marshal(req)
	if err != nil {
		return rpcerr.BadRequest(errorID, "call to %s: encoding the request as %s: %v", call, cd.ContentType(), err)
	}
	if co.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, co.RequestTimeout)
		defer cancel()
	}
	if ctx.Err() != nil {
		return ctxError(ctx, call, co.RequestTimeout)
	}

	forced := framingOf(co.ContentType)
	var next selector.Next
	switch {
	case co.Node != nil:
		next = single(co.Node)
		sel = nil
	case co.Address != "":
		next = single(&registry.Node{ID: co.Address, Address: co.Address})
		sel = nil
	case sel == nil:
		return rpcerr.InternalServerError(errorID, "call to %s: the client has no registry or selector", call)
	default:
		next, err = sel.Select(ctx, service)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return rpcerr.NotFound(errorID, "service %s: not found", service)
		case err != nil && ctx.Err() != nil:
			return ctxError(ctx, call, co.RequestTimeout)
		case err != nil:
			return rpcerr.ServiceUnavailable(errorID, "call to %s: looking up the service: %v", call, err)
		}
	}

	md, _ := metadata.FromContext(ctx)
	treq := &transport.Request{
		Service:     service,
		Endpoint:    endpoint,
		ContentType: cd.ContentType(),
		Metadata:    md,
		Body:        body,
	}
	var last error
	tried := 0
	for range co.Retries + 1 {
		node, err := next()
		if err != nil {
			if last == nil {
				return rpcerr.ServiceUnavailable(errorID, "call to %s: no node available: %v", call, err)
			}
			break
		}
		if dl, ok := ctx.Deadline(); ok {
			treq.Timeout = time.Until(dl)
		}
		treq.GoMicro, treq.Framing = dialect(node, treq.ContentType, forced)
		tried++
		res, err := c.tr.Send(ctx, node.Address, treq)
		if err == nil {
			if rsp != nil {
				err = cd.Unmarshal(res.Body, rsp)
			}
			res.Release()
			if err != nil {
				return rpcerr.InternalServerError(errorID, "call to %s: decoding the response (%s) from %s: %v", call, cd.ContentType(), node.Address, err)
			}
			return nil
		}
		if done(ctx) {
			return ctxError(ctx, call, co.RequestTimeout)
		}
		var re *rpcerr.Error
		if errors.As(err, &re) {
			return re // the server answered: never retried
		}
		if sel != nil {
			sel.Mark(service, node, err)
		}
		last = err
		var se *transport.SendError
		if !co.Idempotent && !(errors.As(err, &se) && se.NotSent) {
			return rpcerr.ServiceUnavailable(errorID, "call to %s: %v (not retried: the request may have reached the server)", call, err)
		}
	}
	if tried > 1 {
		return rpcerr.ServiceUnavailable(errorID, "call to %s failed on %d nodes, last: %v", call, tried, last)
	}
	return rpcerr.ServiceUnavailable(errorID, "call to %s: %v", call, last)
}

// done reports whether ctx is done or its deadline has passed (the server,
// whose deadline is never earlier than the caller's, may answer 408 before
// the caller's own timer fires).
func done(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// ctxError is the error of a call whose context is done.
func ctxError(ctx context.Context, call callName, timeout time.Duration) *rpcerr.Error {
	if err := ctx.Err(); err == nil || errors.Is(err, context.DeadlineExceeded) {
		if timeout > 0 {
			return rpcerr.Timeout(errorID, "call to %s timed out after %v", call, timeout)
		}
		return rpcerr.Timeout(errorID, "call to %s timed out: the caller's deadline passed", call)
	}
	return rpcerr.Timeout(errorID, "call to %s: %v", call, context.Cause(ctx))
}

// callName names a call in error details ("go.micro.srv.x Foo.Bar"),
// formatted only when an error needs it.
type callName struct{ service, endpoint string }

func (c callName) String() string { return c.service + " " + c.endpoint }

// single yields one node, once.
func single(n *registry.Node) selector.Next {
	done := false
	return func() (*registry.Node, error) {
		if done {
			return nil, fmt.Errorf("node %s: %w", n.Address, selector.ErrNoneAvailable)
		}
		done = true
		return n, nil
	}
}

// dialectKeys are the node metadata keys [dialect] reads.
var dialectKeys = [...]string{"protocol", "server", "content_types"}

// Target returns what a call through [WithNode] needs of n: a copy holding
// its id, address and the metadata that says how to speak to it, for
// callers that keep nodes to call later and need not keep the rest.
func Target(n *registry.Node) *registry.Node {
	t := &registry.Node{ID: n.ID, Address: n.Address}
	for _, k := range dialectKeys {
		if v, ok := n.Metadata[k]; ok {
			if t.Metadata == nil {
				t.Metadata = map[string]string{}
			}
			t.Metadata[k] = v
		}
	}
	return t
}

// framingOf returns the framing a content type forces: one of go-micro's
// old framings, or plain (the framing then follows the node).
func framingOf(ct string) transport.Framing {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case codec.ProtoRPC:
		return transport.FramingProtoRPC
	case codec.JSONRPC:
		return transport.FramingJSONRPC
	}
	return transport.FramingPlain
}

// dialect returns how a call in content type ct (the message's) reaches
// node, from the node's metadata, as go-micro's client decides but telling
// microbot's nodes apart: a microbot node (one that lists its
// content_types, or an older release's, server=microbot) gets microbot's
// wire; a go-micro node with a protocol (go-micro writes protocol=mucp
// since v0.22) gets go-micro v1's dialect; another go-micro node (one with
// go-micro's server key: v0.21 and older) gets go-micro's old framing of
// ct; a node with none of these keys (an address given, a node registered
// by hand) gets microbot's wire. forced, if not plain, wins.
func dialect(node *registry.Node, ct string, forced transport.Framing) (goMicro bool, framing transport.Framing) {
	if forced != transport.FramingPlain {
		return true, forced
	}
	md := node.Metadata // read only at dialectKeys
	switch {
	case md["content_types"] != "", md["server"] == "microbot":
		return false, transport.FramingPlain
	case md["protocol"] != "":
		return true, transport.FramingPlain
	case md["server"] == "":
		return false, transport.FramingPlain
	case ct == codec.JSON:
		return true, transport.FramingJSONRPC
	}
	return true, transport.FramingProtoRPC
}
