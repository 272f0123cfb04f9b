package nats_test

import (
	"context"
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
)

// BenchmarkPublish is the publisher's side alone (no subscriber): our
// Publish against nats.go's, on one real nats-server. The broker's own
// cost is what it adds to nats.go's (bench/cmd/brokerbench measures
// publish -> delivered).
func BenchmarkPublish(b *testing.B) {
	srv := natstest.Start(b)
	body := make([]byte, 128)
	b.Run("nats.go", func(b *testing.B) {
		nc, err := natsgo.Connect(srv.URL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		for b.Loop() {
			if err := nc.Publish("bench.x", body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours", func(b *testing.B) {
		br, err := nats.New(nats.WithAddrs(srv.Addr))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := br.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		defer br.Disconnect(ctx) //nolint:errcheck
		m := &broker.Message{Body: body}
		for b.Loop() {
			if err := br.Publish(ctx, "bench.x", m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
