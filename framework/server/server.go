// Package server answers calls: handlers are registered by reflection from
// a struct's exported methods of the form
//
//	func (h *T) Method(ctx context.Context, req *Req, rsp *Rsp) error
//
// and served as endpoint "T.Method". Req and Rsp are protobuf messages, or
// any Go types for JSON callers. The method lookups are done once, when the
// handler is registered.
//
// The endpoints and their request and response schemas (field names as in
// JSON, types as Go or protobuf scalar names, nested messages to a bounded
// depth) are published in the registry with the node.
//
// Every server also answers Debug.Health with status "ok", in both codecs:
// its messages, [HealthRequest] and [HealthResponse], encode themselves on
// the protobuf wire by hand (package protowire), as go.micro.debug's
// HealthRequest and HealthResponse.
//
// Errors a caller gets: unknown endpoint (404), malformed body (400, naming
// the endpoint and the decode error), unsupported Content-Type (415, listing
// the supported ones), body over the limit (413), a handler that panicked
// (500; the panic and its stack are logged with slog and the server lives
// on), a handler that returned a plain error (500 with its text) or an
// *rpcerr.Error (sent as it is). The handler's context carries the
// caller's deadline and metadata.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/codec"
	"github.com/microbot/microbot/framework/internal/node"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/framework/transport"
)

// Defaults of a Server.
const (
	DefaultAddress     = "127.0.0.1:0"
	DefaultMaxBodySize = transport.DefaultMaxBodySize
	DefaultMaxConns    = transport.DefaultMaxConns
)

// Server serves handlers and keeps its node registered. It is safe for
// concurrent use.
type Server struct {
	mu       sync.Mutex
	opts     Options
	handlers map[string]bool                      // handler names taken
	eps      atomic.Pointer[map[string]*endpoint] // copied on write
	ln       net.Listener
	srv      *transport.Server
	served   chan struct{}   // closed when Serve returns
	id       string          // generated node id, used when opts.ID is empty
	subs     []*Subscription // copied on write
}

// Options configure a Server.
type Options struct {
	Name        string
	Version     string
	ID          string // node id; default: Name + "-" + a random UUID
	Address     string // listen address; default "127.0.0.1:0"
	Advertise   string // address published in the registry; default: the listener's
	Metadata    map[string]string
	Registry    registry.Registry
	RegisterTTL time.Duration
	MaxBodySize int64 // request bodies over this are refused with 413; default 4 MiB
	MaxConns    int   // connections over this are refused with 503; default 1024
	// Broker is where Subscribe subscribes.
	Broker broker.Broker
}

// Option sets an Options field.
type Option func(*Options)

// WithName sets the service name.
func WithName(n string) Option { return func(o *Options) { o.Name = n } }

// WithVersion sets the service version.
func WithVersion(v string) Option { return func(o *Options) { o.Version = v } }

// WithID sets the node id.
func WithID(id string) Option { return func(o *Options) { o.ID = id } }

// WithAddress sets the listen address.
func WithAddress(a string) Option { return func(o *Options) { o.Address = a } }

// WithAdvertise sets the address published in the registry, when callers must
// use another one than the listener's (NAT, containers, 0.0.0.0).
func WithAdvertise(a string) Option { return func(o *Options) { o.Advertise = a } }

// WithMetadata sets the node metadata.
func WithMetadata(md map[string]string) Option { return func(o *Options) { o.Metadata = md } }

// WithRegistry sets the registry the server registers in.
func WithRegistry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// WithRegisterTTL sets the TTL of the node's registration.
func WithRegisterTTL(d time.Duration) Option { return func(o *Options) { o.RegisterTTL = d } }

// WithMaxBodySize sets the largest request body accepted.
func WithMaxBodySize(n int64) Option { return func(o *Options) { o.MaxBodySize = n } }

// WithMaxConns sets how many connections the server keeps open at once;
// more are answered with a 503 and closed.
func WithMaxConns(n int) Option { return func(o *Options) { o.MaxConns = n } }

// WithBroker sets the broker Subscribe subscribes with.
func WithBroker(b broker.Broker) Option { return func(o *Options) { o.Broker = b } }

// HandlerOptions are the options of one Handle call.
type HandlerOptions struct {
	// Name overrides the handler's name (default: the struct type's name).
	Name string
	// Metadata is published on each of the handler's endpoints.
	Metadata map[string]string
}

// HandlerOption sets a HandlerOptions field.
type HandlerOption func(*HandlerOptions)

// WithHandlerName sets the name endpoints are published under ("Command" gives
// "Command.Exec").
func WithHandlerName(n string) HandlerOption { return func(o *HandlerOptions) { o.Name = n } }

// WithEndpointMetadata sets metadata published on each of the handler's
// endpoints.
func WithEndpointMetadata(md map[string]string) HandlerOption {
	return func(o *HandlerOptions) { o.Metadata = md }
}

// New returns a Server configured by opts that already serves
// Debug.Health. It fails if an option is out of range.
func New(opts ...Option) (*Server, error) {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.MaxBodySize < 0:
		return nil, fmt.Errorf("server %s: negative max body size %d", o.Name, o.MaxBodySize)
	case o.RegisterTTL < 0:
		return nil, fmt.Errorf("server %s: negative register TTL %v", o.Name, o.RegisterTTL)
	}
	if o.Advertise != "" {
		if _, _, err := net.SplitHostPort(o.Advertise); err != nil {
			return nil, fmt.Errorf("server %s: advertised address %q: want host:port", o.Name, o.Advertise)
		}
	}
	o.Metadata = maps.Clone(o.Metadata)
	s := &Server{opts: o, handlers: map[string]bool{}}
	s.eps.Store(&map[string]*endpoint{})
	if err := s.Handle(&debugHandler{}, WithHandlerName("Debug")); err != nil {
		return nil, err // cannot happen: the handler is well-formed and first
	}
	return s, nil
}

// Options returns a copy of the server's options; ID is the node id it
// registers under once started.
func (s *Server) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opts
	if o.ID == "" {
		o.ID = s.id
	}
	o.Metadata = maps.Clone(o.Metadata)
	return o
}

// Handle registers h's methods. It returns an error if h has no method of
// the handler form or its name is taken. Handlers added after Start are
// served at once and published at the next Register.
func (s *Server) Handle(h any, opts ...HandlerOption) error {
	var o HandlerOptions
	for _, f := range opts {
		f(&o)
	}
	name, eps, err := handlerEndpoints(h, o)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers[name] {
		return fmt.Errorf("handler %T: the name %s is taken", h, name)
	}
	old := *s.eps.Load()
	next := make(map[string]*endpoint, len(old)+len(eps))
	for k, v := range old {
		next[k] = v
	}
	for k, v := range eps {
		next[k] = v
	}
	s.handlers[name] = true
	s.eps.Store(&next)
	return nil
}

// Endpoints returns the endpoints the server publishes: its handlers'
// sorted by name, then its subscriptions (see Subscribe).
func (s *Server) Endpoints() []*registry.Endpoint {
	s.mu.Lock()
	subs := s.subs
	s.mu.Unlock()
	return append(endpointInfos(*s.eps.Load()), subscriberEndpoints(subs)...)
}

// Start listens on the Address and serves, then registers the node. A
// failed registration is logged, not returned: the caller (framework.Service)
// registers again on its interval; call Register to see the error.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		return errors.New("server already started")
	}
	if s.opts.Name == "" {
		s.mu.Unlock()
		return errors.New("server has no name: set one with server.WithName (or framework.WithName, --server_name)")
	}
	if s.id == "" {
		s.id = s.opts.Name + "-" + node.NewUUID()
	}
	addr := s.opts.Address
	if addr == "" {
		addr = DefaultAddress
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("server %s: listen: %w", s.opts.Name, err)
	}
	maxBody := s.opts.MaxBodySize
	if maxBody <= 0 {
		maxBody = DefaultMaxBodySize
	}
	s.ln = ln
	s.srv = transport.NewServer((*rpcHandler)(s), transport.WithMaxBodySize(maxBody), transport.WithErrorID(s.opts.Name),
		transport.WithMaxConns(s.opts.MaxConns))
	s.served = make(chan struct{})
	srv, served, name, subs := s.srv, s.served, s.opts.Name, s.subs
	s.mu.Unlock()

	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, transport.ErrServerClosed) {
			slog.Error("server stopped serving", "service", name, "err", err)
		}
	}()
	if err := s.startSubscriptions(ctx, subs); err != nil {
		s.mu.Lock()
		s.srv, s.ln = nil, nil
		s.mu.Unlock()
		_ = srv.Close()
		<-served
		return err
	}
	if err := s.Register(ctx); err != nil {
		slog.Warn("register failed; will retry", "service", name, "err", err)
	}
	return nil
}

// Address returns the address the server listens on once started, or "".
func (s *Server) Address() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// service returns the registry entry of this node. s.mu must be held.
func (s *Server) service() *registry.Service {
	// What go-micro v1's servers write (protocol=mucp tells go-micro's
	// client to speak its current protocol, which this server answers as
	// go-micro's servers do; transport, server, registry, broker), and
	// content_types, which marks the node as microbot's.
	md := map[string]string{
		"protocol":      "mucp",
		"server":        "mucp",
		"transport":     "http",
		"content_types": codec.Supported(),
	}
	if s.opts.Registry != nil {
		md["registry"] = s.opts.Registry.String()
	}
	if s.opts.Broker != nil {
		md["broker"] = s.opts.Broker.String()
	}
	for k, v := range s.opts.Metadata {
		md[k] = v
	}
	id := s.opts.ID
	if id == "" {
		id = s.id
	}
	return &registry.Service{
		Name:      s.opts.Name,
		Version:   s.opts.Version,
		Endpoints: append(endpointInfos(*s.eps.Load()), subscriberEndpoints(s.subs)...),
		Nodes: []*registry.Node{{
			ID:       id,
			Address:  node.Advertised(s.opts.Advertise, s.ln.Addr()),
			Metadata: md,
		}},
	}
}

// Register registers (or refreshes) the node in the registry. It is a no-op
// without a registry.
func (s *Server) Register(ctx context.Context) error {
	s.mu.Lock()
	if s.ln == nil {
		s.mu.Unlock()
		return errors.New("server not started")
	}
	r, svc, ttl := s.opts.Registry, s.service(), s.opts.RegisterTTL
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	var ro []registry.RegisterOption
	if ttl > 0 {
		ro = append(ro, registry.WithTTL(ttl))
	}
	if err := r.Register(ctx, svc, ro...); err != nil {
		return fmt.Errorf("register %s in %s registry: %w", svc.Name, r, err)
	}
	return nil
}

// Stop deregisters the node, stops accepting and waits for in-flight
// requests until ctx is done; then it cuts them off and returns an error
// saying so.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.srv == nil {
		s.mu.Unlock()
		return nil
	}
	r, svc, srv, served := s.opts.Registry, s.service(), s.srv, s.served
	s.srv, s.ln = nil, nil
	s.mu.Unlock()

	var errs []error
	if r != nil {
		if err := r.Deregister(ctx, svc); err != nil {
			errs = append(errs, fmt.Errorf("deregister %s: %w", svc.Name, err))
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("server %s: in-flight requests cut off: %w", svc.Name, err))
	}
	<-served
	return errors.Join(errs...)
}

// serveRPC answers one call that arrived over the transport.
func (s *Server) serveRPC(ctx context.Context, req *transport.Request) ([]byte, error) {
	id := s.opts.Name
	if req.Service != "" && id != "" && req.Service != id {
		return nil, rpcerr.NotFound(id, "service %s: not served here (this node serves %s)", req.Service, id)
	}
	if req.Endpoint == "" {
		return nil, rpcerr.BadRequest(id, "no endpoint named: set the %s header", transport.HeaderEndpoint)
	}
	e, ok := (*s.eps.Load())[req.Endpoint]
	if !ok {
		return nil, rpcerr.NotFound(id, "unknown endpoint %s of service %s", req.Endpoint, id)
	}
	c, err := codec.For(req.ContentType)
	if err != nil {
		return nil, rpcerr.UnsupportedMediaType(id, "unsupported content type %q for %s; supported: %s",
			req.ContentType, req.Endpoint, codec.Supported())
	}
	return e.call(ctx, id, c, req.Body)
}

// rpcHandler adapts the server to transport.Handler without exporting
// ServeRPC on Server.
type rpcHandler Server

// ServeRPC implements transport.Handler.
func (h *rpcHandler) ServeRPC(ctx context.Context, req *transport.Request) ([]byte, error) {
	return (*Server)(h).serveRPC(ctx, req)
}
