// Package server answers calls: handlers are registered by reflection from
// a struct's exported methods of the form
//
//	func (h *T) Method(ctx context.Context, req *Req, rsp *Rsp) error
//
// and served as endpoint "T.Method". The endpoints and their request and
// response schemas are published in the registry; every server also answers
// Debug.Health. A panicking handler returns an error and the server lives on.
package server

import (
	"context"
	"time"

	"github.com/microbot/microbot/framework/registry"
)

// Server serves handlers and keeps its node registered.
type Server struct {
	opts Options
}

// Options configure a Server.
type Options struct {
	Name        string
	Version     string
	ID          string // node id; default: Name + "-" + a random suffix
	Address     string // listen address; default "127.0.0.1:0"
	Advertise   string // address published in the registry; default: the listener's
	Metadata    map[string]string
	Registry    registry.Registry
	RegisterTTL time.Duration
	MaxBodySize int64 // request bodies over this are refused with 413; default 4 MiB
}

// Option sets an Options field.
type Option func(*Options)

// Name sets the service name.
func Name(n string) Option { return func(o *Options) { o.Name = n } }

// Version sets the service version.
func Version(v string) Option { return func(o *Options) { o.Version = v } }

// Address sets the listen address.
func Address(a string) Option { return func(o *Options) { o.Address = a } }

// Metadata sets the node metadata.
func Metadata(md map[string]string) Option { return func(o *Options) { o.Metadata = md } }

// Registry sets the registry the server registers in.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// RegisterTTL sets the TTL of the node's registration.
func RegisterTTL(d time.Duration) Option { return func(o *Options) { o.RegisterTTL = d } }

// MaxBodySize sets the largest request body accepted.
func MaxBodySize(n int64) Option { return func(o *Options) { o.MaxBodySize = n } }

// HandlerOptions are the options of one Handle call.
type HandlerOptions struct {
	// Name overrides the handler's name (default: the struct type's name).
	Name string
	// Metadata is published on each of the handler's endpoints.
	Metadata map[string]string
}

// HandlerOption sets a HandlerOptions field.
type HandlerOption func(*HandlerOptions)

// HandlerName sets the name endpoints are published under ("Command" gives
// "Command.Exec").
func HandlerName(n string) HandlerOption { return func(o *HandlerOptions) { o.Name = n } }

// New returns a Server.
func New(opts ...Option) *Server {
	s := &Server{}
	for _, o := range opts {
		o(&s.opts)
	}
	return s
}

// Handle registers h's methods. It returns an error if h has no method of
// the handler form or its name is taken.
func (s *Server) Handle(h any, opts ...HandlerOption) error {
	panic("TODO(framework): Server.Handle")
}

// Start listens and registers the node.
func (s *Server) Start(ctx context.Context) error { panic("TODO(framework): Server.Start") }

// Register registers (or refreshes) the node in the registry.
func (s *Server) Register(ctx context.Context) error { panic("TODO(framework): Server.Register") }

// Stop deregisters the node, stops accepting and waits for in-flight
// requests until ctx is done.
func (s *Server) Stop(ctx context.Context) error { panic("TODO(framework): Server.Stop") }

// Address returns the address the server listens on once started.
func (s *Server) Address() string { panic("TODO(framework): Server.Address") }
