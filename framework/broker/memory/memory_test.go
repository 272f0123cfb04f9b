package memory_test

import (
	"testing"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/brokertest"
	"github.com/microbot/microbot/framework/broker/memory"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) brokertest.Bus {
		bus := memory.NewBus()
		return func(t *testing.T) broker.Broker { return memory.New(memory.WithBus(bus)) }
	})
}
