package http_test

import (
	"testing"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/brokertest"
	brokerhttp "github.com/microbot/microbot/framework/broker/http"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/framework/registry/memory"
)

func newBroker(t *testing.T, reg registry.Registry, opts ...brokerhttp.Option) *brokerhttp.Broker {
	t.Helper()
	b, err := brokerhttp.New(append([]brokerhttp.Option{brokerhttp.WithRegistry(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the suite with the subscribers found in each
// registry: memory (one process), local (a directory, as the processes of
// one host share it; each broker has its own registry over it) and a real
// Consul agent.
func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		brokertest.Run(t, func(t *testing.T) brokertest.Bus {
			reg := memory.New()
			return func(t *testing.T) broker.Broker { return newBroker(t, reg) }
		})
	})
	t.Run("local", func(t *testing.T) {
		brokertest.Run(t, func(t *testing.T) brokertest.Bus {
			dir := t.TempDir()
			return func(t *testing.T) broker.Broker {
				reg, err := local.New(local.WithDir(dir))
				if err != nil {
					t.Fatal(err)
				}
				return newBroker(t, reg)
			}
		})
	})
	t.Run("consul", func(t *testing.T) {
		agent := consultest.Start(t)
		brokertest.Run(t, func(t *testing.T) brokertest.Bus {
			return func(t *testing.T) broker.Broker {
				reg, err := consul.New(consul.WithAddrs(agent.Addr()))
				if err != nil {
					t.Fatal(err)
				}
				return newBroker(t, reg)
			}
		})
	})
}
