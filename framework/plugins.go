package framework

import (
	"fmt"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/selector"
	"github.com/microbot/microbot/internal/plugin"
)

// The tables of the plugins a Service builds by name (the shape is package
// internal/plugin's): a new implementation is one more line in its table.

// registries is the table --registry (WithRegistryName) picks from: each
// entry builds a registry at the addresses --registry_address gives.
var registries = plugin.NewTable("registry", map[string]func(addrs []string) (registry.Registry, error){
	"consul": newConsul,
	"local":  newLocal,
	"memory": newMemory,
})

// selectors is the table --selector (WithSelector) picks from.
var selectors = plugin.NewTable("selector", map[string]func() selector.Strategy{
	"random":     selector.Random,
	"roundrobin": selector.RoundRobin,
})

// newRegistry builds the registry called name at addrs.
func newRegistry(name string, addrs []string) (registry.Registry, error) {
	build, err := registries.Get(name)
	if err != nil {
		return nil, err
	}
	return build(addrs)
}

// newConsul is a Consul registry talking to the agents at addrs.
func newConsul(addrs []string) (registry.Registry, error) {
	r, err := consul.New(consul.WithAddrs(addrs...))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// newLocal is a local registry in the directory addrs names, if any.
func newLocal(addrs []string) (registry.Registry, error) {
	var opts []local.Option
	switch len(addrs) {
	case 0:
	case 1:
		opts = append(opts, local.WithDir(addrs[0]))
	default:
		return nil, fmt.Errorf("local registry: one directory expected, got %d addresses %q", len(addrs), addrs)
	}
	r, err := local.New(opts...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// newMemory is an in-process registry; it has no address, so addrs are
// ignored.
func newMemory([]string) (registry.Registry, error) { return memory.New(), nil }
