package framework

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/server"
)

// Defaults of a Service; the flags have the same defaults.
const (
	DefaultRegistry         = "local"
	DefaultRegisterTTL      = 30 * time.Second
	DefaultRegisterInterval = 15 * time.Second
	DefaultSelector         = "random"
	DefaultAddress          = server.DefaultAddress
	DefaultStopTimeout      = 15 * time.Second
)

// Options configure a Service.
type Options struct {
	Name     string
	Version  string
	ID       string // node id; default: Name + "-" + a random UUID
	Metadata map[string]string

	// Registry is the registry to use. When nil, one is built by name from
	// the plugin table: RegistryName at RegistryAddrs.
	Registry      registry.Registry
	RegistryName  string
	RegistryAddrs []string
	// RegisterTTL is how long the node lives in the registry without being
	// registered again; RegisterInterval is how often it is (0: only at
	// start).
	RegisterTTL      time.Duration
	RegisterInterval time.Duration

	// Address is the listen address; Advertise the one published, if not
	// the listener's.
	Address     string
	Advertise   string
	MaxBodySize int64
	// MaxConns is how many connections the server keeps open at once.
	MaxConns int

	// Selector names the node selection strategy: "random" or "roundrobin".
	Selector             string
	ClientRetries        int
	ClientRequestTimeout time.Duration

	// Flags are added to the framework's in Init (see ExtraFlags); Actions
	// run after Init has parsed the command line, with its context.
	Flags   []cli.Flag
	Actions []func(*cli.Context) error

	// Context ends Run when done (besides SIGINT and SIGTERM).
	Context context.Context
	// StopTimeout bounds the draining of in-flight requests in Run.
	StopTimeout time.Duration
}

// Option sets an Options field.
type Option func(*Options)

func defaultOptions() Options {
	return Options{
		RegistryName:         DefaultRegistry,
		RegisterTTL:          DefaultRegisterTTL,
		RegisterInterval:     DefaultRegisterInterval,
		Address:              DefaultAddress,
		MaxBodySize:          server.DefaultMaxBodySize,
		MaxConns:             server.DefaultMaxConns,
		Selector:             DefaultSelector,
		ClientRetries:        client.DefaultRetries,
		ClientRequestTimeout: client.DefaultRequestTimeout,
		Context:              context.Background(),
		StopTimeout:          DefaultStopTimeout,
	}
}

// Name sets the service name ("go.micro.srv.greeter").
func Name(n string) Option { return func(o *Options) { o.Name = n } }

// Version sets the service version.
func Version(v string) Option { return func(o *Options) { o.Version = v } }

// ID sets the node id.
func ID(id string) Option { return func(o *Options) { o.ID = id } }

// Metadata sets the node metadata.
func Metadata(md map[string]string) Option { return func(o *Options) { o.Metadata = md } }

// Registry sets the registry, instead of one built by name.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// RegistryName picks the registry plugin by name ("local", "memory",
// "consul") and its addresses, as --registry and --registry_address do.
func RegistryName(name string, addrs ...string) Option {
	return func(o *Options) { o.RegistryName, o.RegistryAddrs = name, addrs }
}

// RegisterTTL sets how long the node lives without a new registration.
func RegisterTTL(d time.Duration) Option { return func(o *Options) { o.RegisterTTL = d } }

// RegisterInterval sets how often the node registers again.
func RegisterInterval(d time.Duration) Option { return func(o *Options) { o.RegisterInterval = d } }

// Address sets the listen address ("127.0.0.1:0" picks a free port).
func Address(a string) Option { return func(o *Options) { o.Address = a } }

// Advertise sets the address published in the registry.
func Advertise(a string) Option { return func(o *Options) { o.Advertise = a } }

// MaxBodySize sets the largest request body the server accepts.
func MaxBodySize(n int64) Option { return func(o *Options) { o.MaxBodySize = n } }

// WithMaxConns sets how many connections the server keeps open at once;
// more are answered with a 503 and closed.
func WithMaxConns(n int) Option { return func(o *Options) { o.MaxConns = n } }

// Selector sets the node selection strategy: "random" or "roundrobin".
func Selector(name string) Option { return func(o *Options) { o.Selector = name } }

// ClientRetries sets how many other nodes a call may try when that is safe.
func ClientRetries(n int) Option { return func(o *Options) { o.ClientRetries = n } }

// ClientRequestTimeout sets the default timeout of a call.
func ClientRequestTimeout(d time.Duration) Option {
	return func(o *Options) { o.ClientRequestTimeout = d }
}

// ExtraFlags adds command-line flags to those Init parses (the framework's
// own are [Flags]).
func ExtraFlags(flags ...cli.Flag) Option {
	return func(o *Options) { o.Flags = append(o.Flags, flags...) }
}

// Action adds functions Init runs once the command line is parsed, e.g. to
// read the flags added with ExtraFlags.
func Action(fns ...func(*cli.Context) error) Option {
	return func(o *Options) { o.Actions = append(o.Actions, fns...) }
}

// Context sets a context whose end stops Run.
func Context(ctx context.Context) Option { return func(o *Options) { o.Context = ctx } }

// StopTimeout bounds the draining of in-flight requests when Run stops.
func StopTimeout(d time.Duration) Option { return func(o *Options) { o.StopTimeout = d } }
