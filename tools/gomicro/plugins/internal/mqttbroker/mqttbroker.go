// Package mqttbroker makes go-plugins v1.5.1's MQTT broker for the
// programs of this module, as a go-micro v1.16.0 service that picks its
// registry by flag must.
//
// go-plugins' broker starts with a nil broker.Options.Context, and go-micro
// v1.16.0's config/cmd, given any --registry other than its default (mdns),
// hands the broker the registry with broker.Registry, which calls
// context.WithValue on that nil context: the program panics at start
// ("cannot create context from nil parent"), also with go-plugins' own
// recipe (import _ ".../broker/mqtt", --broker=mqtt). The programs here run
// with --registry=memory, so they give the broker a context first; nothing
// else of go-plugins' broker changes.
package mqttbroker

import (
	"context"

	"github.com/micro/go-micro/broker"
	"github.com/micro/go-plugins/broker/mqtt"
)

// New returns go-plugins' MQTT broker with a context, for micro.Broker;
// --broker_address then sets its servers.
func New() broker.Broker {
	return mqtt.NewBroker(func(o *broker.Options) { o.Context = context.Background() })
}
