package nats_test

import (
	"strconv"
	"testing"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/brokertest"
	"github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/internal/testenv"
)

func newBroker(t *testing.T, addrs ...string) broker.Broker {
	t.Helper()
	b, err := nats.New(nats.WithAddrs(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	srv := natstest.Start(t)
	brokertest.Run(t, func(t *testing.T) brokertest.Bus {
		return func(t *testing.T) broker.Broker { return newBroker(t, srv.Addr) }
	},
		brokertest.WithRestart(func(t *testing.T) { srv.Restart() }),
		brokertest.WithUnreachable(func(t *testing.T) broker.Broker {
			return newBroker(t, "127.0.0.1:"+itoa(testenv.FreePorts(t, 1)[0]))
		}),
	)
}

func itoa(n int) string { return strconv.Itoa(n) }
