package commandsvc_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/client"
	pb "github.com/microbot/microbot/proto/bot"
)

// BenchmarkProgressNATS measures one line of progress on a local
// nats-server, the bot subscribed on a connection of its own: "publish" is
// what Progress cost before it flushed (the client's Publish of the same
// Notification), "progress" is Progress (Publish, then a round trip to the
// server).
func BenchmarkProgressNATS(b *testing.B) {
	srv := natstest.Start(b)
	newNATS := func() *nats.Broker {
		nb, err := nats.New(nats.WithAddrs(srv.Addr), nats.WithLogger(slog.New(slog.DiscardHandler))) // publish floods the subscriber: its drops are no news
		if err != nil {
			b.Fatal(err)
		}
		if err := nb.Connect(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { nb.Disconnect(context.Background()) })
		return nb
	}
	svcB, botB := newNATS(), newNATS()
	c, err := client.New(client.WithBroker(svcB))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	topic := commandsvc.ProgressTopicPrefix + "bench"
	if _, err := botB.Subscribe(context.Background(), topic, func(context.Context, *broker.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
	ctx := execContext(b, c, topic)
	b.Run("publish", func(b *testing.B) {
		for b.Loop() {
			if err := c.Publish(ctx, topic, &pb.Notification{Text: "a step"}, client.WithContentType("application/protobuf")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("progress", func(b *testing.B) {
		for b.Loop() {
			if err := commandsvc.Progress(ctx, "a step"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
