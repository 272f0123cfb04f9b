package nats

import (
	"context"
	"log/slog"
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/internal/deliver"
	"github.com/microbot/microbot/framework/broker/internal/envelope"
)

// BenchmarkDeliver is the subscriber's side alone: a message as nats.go
// hands it to the subscription (with the headers a framework client
// sends), made an Event and run through the handler.
func BenchmarkDeliver(b *testing.B) {
	var got int
	s := &sub{r: deliver.NewRunner("bench.x", "", func(_ context.Context, e *broker.Event) error {
		got += len(e.Header)
		return nil
	}, slog.New(slog.DiscardHandler))}
	m := &natsgo.Msg{Subject: "bench.x", Data: make([]byte, 128), Header: natsgo.Header{}}
	m.Header.Set("Content-Type", "application/protobuf")
	m.Header.Set("Micro-Id", "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50")
	b.ReportAllocs()
	for b.Loop() {
		s.deliver(m)
	}
	if got == 0 {
		b.Fatal("no header delivered")
	}
}

// BenchmarkDeliverNoHeader is BenchmarkDeliver without headers: the Event
// and the runner alone.
func BenchmarkDeliverNoHeader(b *testing.B) {
	s := &sub{r: deliver.NewRunner("bench.x", "", func(_ context.Context, e *broker.Event) error {
		return nil
	}, slog.New(slog.DiscardHandler))}
	m := &natsgo.Msg{Subject: "bench.x", Data: make([]byte, 128)}
	b.ReportAllocs()
	for b.Loop() {
		s.deliver(m)
	}
}

// BenchmarkDeliverJSON is BenchmarkDeliverNoHeader with an application's
// JSON object as the payload (what `nats pub` sends): the test for
// go-micro's message looks at its first key and lets it through.
func BenchmarkDeliverJSON(b *testing.B) {
	s := &sub{r: deliver.NewRunner("bench.x", "", func(_ context.Context, e *broker.Event) error {
		return nil
	}, slog.New(slog.DiscardHandler))}
	m := &natsgo.Msg{Subject: "bench.x", Data: []byte(`{"title":"deploy started","severity":"info","thread_key":"web-v2","source":"ci","n":12345678}`)}
	b.ReportAllocs()
	for b.Loop() {
		s.deliver(m)
	}
}

// BenchmarkDeliverEnvelope is BenchmarkDeliver for a message of go-micro's
// nats broker: the same headers and body, in its JSON message, unwrapped.
func BenchmarkDeliverEnvelope(b *testing.B) {
	var got int
	s := &sub{r: deliver.NewRunner("bench.x", "", func(_ context.Context, e *broker.Event) error {
		got += len(e.Header)
		return nil
	}, slog.New(slog.DiscardHandler))}
	data := envelope.Encode(map[string]string{"Content-Type": "application/protobuf",
		"Micro-Id": "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50"}, make([]byte, 128))
	m := &natsgo.Msg{Subject: "bench.x", Data: data}
	b.ReportAllocs()
	for b.Loop() {
		s.deliver(m)
	}
	if got == 0 {
		b.Fatal("no header delivered")
	}
}
