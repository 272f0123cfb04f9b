package mqtt_test

import (
	"strconv"
	"testing"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/brokertest"
	"github.com/microbot/microbot/framework/broker/mqtt"
	"github.com/microbot/microbot/framework/broker/mqtt/mosquittotest"
	"github.com/microbot/microbot/internal/testenv"
)

func newBroker(t *testing.T, opts ...mqtt.Option) broker.Broker {
	t.Helper()
	b, err := mqtt.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	srv := mosquittotest.Start(t)
	brokertest.Run(t, func(t *testing.T) brokertest.Bus {
		return func(t *testing.T) broker.Broker { return newBroker(t, mqtt.WithAddrs(srv.Addr)) }
	},
		brokertest.WithRestart(func(t *testing.T) { srv.Restart() }),
		brokertest.WithUnreachable(func(t *testing.T) broker.Broker {
			return newBroker(t, mqtt.WithAddrs("127.0.0.1:"+strconv.Itoa(testenv.FreePorts(t, 1)[0])))
		}),
	)
}
