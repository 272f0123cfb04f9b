// Command subscriber is a service that listens to events and prints each
// one on stdout as a JSON line, {"seq": 1, "text": "...", "from": "..."}:
// server.Subscribe with a handler of a Go type, decoded from JSON.
//
// It takes the framework's flags (see framework.Flags: --broker,
// --broker_address, --registry, ...), and from the environment
// EVENTS_TOPIC (default examples.events) and EVENTS_QUEUE, a queue group:
// of the subscribers in one group, one gets each event.
//
//	subscriber --broker=nats --broker_address=127.0.0.1:4222
//	EVENTS_QUEUE=workers subscriber --broker=mqtt --broker_address=127.0.0.1:1883
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"

	"github.com/microbot/microbot/examples/events"
	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/broker"
)

func main() {
	topic := os.Getenv("EVENTS_TOPIC")
	if topic == "" {
		topic = events.Topic
	}
	var opts []broker.SubscribeOption
	if q := os.Getenv("EVENTS_QUEUE"); q != "" {
		opts = append(opts, broker.WithQueue(q))
	}
	svc, err := framework.NewService(
		framework.WithName("go.micro.srv.subscriber"),
		framework.WithArgs(os.Args),
	)
	if errors.Is(err, framework.ErrHelp) {
		return
	}
	if err != nil {
		slog.Error("subscriber", "err", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	_, err = svc.Server().Subscribe(context.Background(), topic, func(ctx context.Context, e *events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		return enc.Encode(e)
	}, opts...)
	if err != nil {
		slog.Error("subscriber", "err", err)
		os.Exit(2)
	}
	if err := svc.Run(context.Background()); err != nil {
		slog.Error("subscriber", "err", err)
		os.Exit(1)
	}
}
