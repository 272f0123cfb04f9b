package framework

import (
	"fmt"
	"slices"
	"time"

	"github.com/microbot/microbot/framework/broker"
	brokerhttp "github.com/microbot/microbot/framework/broker/http"
	brokermemory "github.com/microbot/microbot/framework/broker/memory"
	brokermqtt "github.com/microbot/microbot/framework/broker/mqtt"
	brokernats "github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/selector"
	"github.com/microbot/microbot/internal/plugin"
)

// The tables of the plugins a Service builds by name (the shape is package
// internal/plugin's): a new implementation is one more line in its table.

// registryConfig is what a registry is built from: the addresses
// --registry_address gives, and --registry_shared_dir.
type registryConfig struct {
	addrs     []string
	sharedDir bool
}

// registries is the table --registry (WithRegistryName) picks from: each
// entry builds a registry from the registry flags.
var registries = plugin.NewTable("registry", map[string]func(registryConfig) (registry.Registry, error){
	"consul": newConsul,
	"local":  newLocal,
	"memory": newMemory,
})

// selectors is the table --selector (WithSelector) picks from.
var selectors = plugin.NewTable("selector", map[string]func() selector.Strategy{
	"random":     selector.Random,
	"roundrobin": selector.RoundRobin,
})

// brokers is the table --broker (WithBrokerName) picks from: each entry
// builds a broker at the addresses --broker_address gives, for a service
// with the given registry and registration timing.
var brokers = plugin.NewTable("broker", map[string]func(c brokerConfig) (broker.Broker, error){
	"http":   newHTTPBroker,
	"memory": newMemoryBroker,
	"mqtt":   newMQTTBroker,
	"nats":   newNATSBroker,
})

// brokerConfig is what a broker of the table is built from.
type brokerConfig struct {
	addrs []string
	// format is --broker_format: "" for the broker's own.
	format           string
	reg              registry.Registry
	registerTTL      time.Duration
	registerInterval time.Duration
}

// newBroker builds the broker called name.
func newBroker(name string, c brokerConfig) (broker.Broker, error) {
	build, err := brokers.Get(name)
	if err != nil {
		return nil, err
	}
	return build(c)
}

// newHTTPBroker is the http broker: its inbox listens at the one address
// given (default 127.0.0.1:0), and its subscribers are registered in the
// service's registry as often, and with the TTL, its node is.
func newHTTPBroker(c brokerConfig) (broker.Broker, error) {
	if err := goMicroWireOnly("http", c.format); err != nil {
		return nil, err
	}
	opts := []brokerhttp.Option{
		brokerhttp.WithRegistry(c.reg),
		brokerhttp.WithRegisterTTL(c.registerTTL),
		brokerhttp.WithRegisterInterval(c.registerInterval),
	}
	switch len(c.addrs) {
	case 0:
	case 1:
		opts = append(opts, brokerhttp.WithAddress(c.addrs[0]))
	default:
		return nil, fmt.Errorf("http broker: one inbox address expected, got %d: %q", len(c.addrs), c.addrs)
	}
	b, err := brokerhttp.New(opts...)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// newMemoryBroker is an in-process broker of its own: only this service's
// subscribers get what it publishes (tests share one with WithBroker and
// memory.WithBus).
func newMemoryBroker(c brokerConfig) (broker.Broker, error) {
	if len(c.addrs) > 0 {
		return nil, fmt.Errorf("memory broker: it takes no address, got %q", c.addrs)
	}
	if c.format != "" {
		return nil, fmt.Errorf("memory broker: %w: it has no wire, so no --%s (got %q)", broker.ErrInvalid, FlagBrokerFormat, c.format)
	}
	return brokermemory.New(), nil
}

// newNATSBroker is a NATS broker over the servers at addrs, publishing in
// the format given (nats's own by default).
func newNATSBroker(c brokerConfig) (broker.Broker, error) {
	opts := []brokernats.Option{brokernats.WithAddrs(c.addrs...)}
	if c.format != "" {
		if !slices.Contains(brokernats.Formats(), brokernats.Format(c.format)) {
			return nil, fmt.Errorf("nats broker: %w: --%s %q: want one of %q", broker.ErrInvalid, FlagBrokerFormat, c.format, brokernats.Formats())
		}
		opts = append(opts, brokernats.WithFormat(brokernats.Format(c.format)))
	}
	b, err := brokernats.New(opts...)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// newMQTTBroker is an MQTT broker over the servers at addrs.
func newMQTTBroker(c brokerConfig) (broker.Broker, error) {
	if err := goMicroWireOnly("mqtt", c.format); err != nil {
		return nil, err
	}
	b, err := brokermqtt.New(brokermqtt.WithAddrs(c.addrs...))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// goMicroWireOnly refuses a format other than go-micro's for the broker
// name, which always sends go-micro's JSON message: "go-micro" only says
// what it does anyway.
func goMicroWireOnly(name, format string) error {
	if format == "" || format == string(brokernats.FormatGoMicro) {
		return nil
	}
	return fmt.Errorf("%s broker: %w: --%s %q: it always sends go-micro's JSON message (%q); the formats are for --%s=nats",
		name, broker.ErrInvalid, FlagBrokerFormat, format, brokernats.FormatGoMicro, FlagBroker)
}

// newRegistry builds the registry called name from cfg.
func newRegistry(name string, cfg registryConfig) (registry.Registry, error) {
	build, err := registries.Get(name)
	if err != nil {
		return nil, err
	}
	return build(cfg)
}

// newConsul is a Consul registry talking to the agents at cfg.addrs.
func newConsul(cfg registryConfig) (registry.Registry, error) {
	r, err := consul.New(consul.WithAddrs(cfg.addrs...))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// newLocal is a local registry in the directory cfg.addrs names, if any.
func newLocal(cfg registryConfig) (registry.Registry, error) {
	var opts []local.Option
	switch len(cfg.addrs) {
	case 0:
	case 1:
		opts = append(opts, local.WithDir(cfg.addrs[0]))
	default:
		return nil, fmt.Errorf("local registry: one directory expected, got %d addresses %q", len(cfg.addrs), cfg.addrs)
	}
	if cfg.sharedDir {
		opts = append(opts, local.WithShared())
	}
	r, err := local.New(opts...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// newMemory is an in-process registry; it has no address, so addrs are
// ignored.
func newMemory(registryConfig) (registry.Registry, error) { return memory.New(), nil }
