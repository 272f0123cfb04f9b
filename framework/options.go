package framework

import (
	"slices"
	"time"

	"github.com/microbot/microbot/framework/broker"
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
	DefaultBroker           = "http"
	// DefaultBrokerConnectTimeout bounds the broker's first connection,
	// made when the service first publishes or subscribes.
	DefaultBrokerConnectTimeout = 10 * time.Second
	DefaultAddress              = server.DefaultAddress
	DefaultStopTimeout          = 15 * time.Second
)

// Options configure a Service.
type Options struct {
	Name     string
	Version  string
	ID       string // node id; default: Name + "-" + a random UUID
	Metadata map[string]string

	// Registry is the registry to use. When nil, one is built from the
	// table of registries: RegistryName at RegistryAddrs.
	Registry      registry.Registry
	RegistryName  string
	RegistryAddrs []string
	// RegistrySharedDir trusts a local registry directory shared with other
	// users (owned by another user, or writable by others) and their
	// registrations in it; without it such a directory is refused.
	RegistrySharedDir bool
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

	// Selector names the node selection strategy in the table of selectors:
	// "random" or "roundrobin".
	Selector             string
	ClientRetries        int
	ClientRequestTimeout time.Duration
	// CallWrappers wrap every call of the service's client (metrics,
	// tracing); the first is the outermost.
	CallWrappers []client.CallWrapper

	// Broker is the broker the client publishes to and the server
	// subscribes with. When nil, one is built from the table of brokers:
	// BrokerName at BrokerAddrs. Either way the service connects it when it
	// first publishes or subscribes (within BrokerConnectTimeout) and
	// disconnects it when it stops.
	Broker               broker.Broker
	BrokerName           string
	BrokerAddrs          []string
	BrokerConnectTimeout time.Duration
	// BrokerFormat is the format the broker built by name publishes in
	// ("" for its own; see WithBrokerFormat).
	BrokerFormat string

	// StopTimeout bounds the draining of in-flight requests in Run.
	StopTimeout time.Duration

	// Args is the command line (os.Args) whose flags NewService reads; nil
	// reads none. See WithArgs.
	Args []string
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
		BrokerName:           DefaultBroker,
		BrokerConnectTimeout: DefaultBrokerConnectTimeout,
		StopTimeout:          DefaultStopTimeout,
	}
}

// WithName sets the service name ("go.micro.srv.greeter").
func WithName(n string) Option { return func(o *Options) { o.Name = n } }

// WithRegistrySharedDir trusts a local registry directory shared with
// other users, as --registry_shared_dir does: anyone who may write in it
// registers services (and commands of a bot).
func WithRegistrySharedDir() Option { return func(o *Options) { o.RegistrySharedDir = true } }

// WithVersion sets the service version.
func WithVersion(v string) Option { return func(o *Options) { o.Version = v } }

// WithID sets the node id.
func WithID(id string) Option { return func(o *Options) { o.ID = id } }

// WithMetadata sets the node metadata.
func WithMetadata(md map[string]string) Option { return func(o *Options) { o.Metadata = md } }

// WithRegistry sets the registry, instead of one built by name.
func WithRegistry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// WithRegistryName picks the registry from the table of registries by name
// ("local", "memory", "consul") with its addresses, as --registry and
// --registry_address do.
func WithRegistryName(name string, addrs ...string) Option {
	return func(o *Options) { o.Registry, o.RegistryName, o.RegistryAddrs = nil, name, addrs }
}

// WithRegisterTTL sets how long the node lives without a new registration.
func WithRegisterTTL(d time.Duration) Option { return func(o *Options) { o.RegisterTTL = d } }

// WithRegisterInterval sets how often the node registers again.
func WithRegisterInterval(d time.Duration) Option {
	return func(o *Options) { o.RegisterInterval = d }
}

// WithAddress sets the listen address ("127.0.0.1:0" picks a free port).
func WithAddress(a string) Option { return func(o *Options) { o.Address = a } }

// WithAdvertise sets the address published in the registry.
func WithAdvertise(a string) Option { return func(o *Options) { o.Advertise = a } }

// WithMaxBodySize sets the largest request body the server accepts.
func WithMaxBodySize(n int64) Option { return func(o *Options) { o.MaxBodySize = n } }

// WithMaxConns sets how many connections the server keeps open at once;
// more are answered with a 503 and closed.
func WithMaxConns(n int) Option { return func(o *Options) { o.MaxConns = n } }

// WithSelector picks the node selection strategy from the table of
// selectors by name: "random" or "roundrobin".
func WithSelector(name string) Option { return func(o *Options) { o.Selector = name } }

// WithClientRetries sets how many other nodes a call may try when that is
// safe.
func WithClientRetries(n int) Option { return func(o *Options) { o.ClientRetries = n } }

// WithClientRequestTimeout sets the default timeout of a call.
func WithClientRequestTimeout(d time.Duration) Option {
	return func(o *Options) { o.ClientRequestTimeout = d }
}

// WithCallWrappers adds wrappers around every call of the service's
// client; the first given is the outermost.
func WithCallWrappers(w ...client.CallWrapper) Option {
	return func(o *Options) { o.CallWrappers = append(slices.Clip(o.CallWrappers), w...) }
}

// WithBroker sets the broker, instead of one built by name. The service
// connects it when it first publishes or subscribes and disconnects it when
// it stops.
func WithBroker(b broker.Broker) Option { return func(o *Options) { o.Broker = b } }

// WithBrokerName picks the broker from the table of brokers by name
// ("http", "memory", "nats", "mqtt") with its addresses, as --broker and
// --broker_address do: for http the inbox's listen address, for nats and
// mqtt the servers.
func WithBrokerName(name string, addrs ...string) Option {
	return func(o *Options) { o.Broker, o.BrokerName, o.BrokerAddrs = nil, name, addrs }
}

// WithBrokerFormat sets the format the broker built by name publishes in,
// as --broker_format does: for nats, "go-micro" (go-micro's JSON message,
// the only one go-micro's nats subscribers read: the default) or "nats"
// (NATS headers and the raw body; see package framework/broker/nats). The http and mqtt
// brokers always send go-micro's JSON message, so they take "go-micro" and
// refuse "nats"; the memory broker has no wire and takes none. NewService
// fails on a format the broker does not take, or with a broker set in code
// (WithBroker: give it its format there).
func WithBrokerFormat(f string) Option { return func(o *Options) { o.BrokerFormat = f } }

// WithBrokerConnectTimeout bounds the broker's first connection: a service
// whose broker cannot be reached within it fails to start (when it
// subscribes) or to publish.
func WithBrokerConnectTimeout(d time.Duration) Option {
	return func(o *Options) { o.BrokerConnectTimeout = d }
}

// WithStopTimeout bounds the draining of in-flight requests when Run stops.
func WithStopTimeout(d time.Duration) Option { return func(o *Options) { o.StopTimeout = d } }

// WithArgs makes NewService read the framework's flags (see [Flags]) from
// the command line args (os.Args, the program's name first). A flag given
// on the command line or in its environment variable overrides the option
// set in code, wherever WithArgs stands among the options; a flag left
// unset does not. After --help or --version NewService returns ErrHelp.
func WithArgs(args []string) Option { return func(o *Options) { o.Args = args } }
