package deliver

import (
	"context"
	"log/slog"
	"runtime"
	"testing"

	"github.com/microbot/microbot/framework/broker"
)

// BenchmarkRun is the cost a message pays to reach its handler through a
// Runner (no queue: the nats broker's path).
func BenchmarkRun(b *testing.B) {
	r := NewRunner("bench", "", func(context.Context, *broker.Event) error { return nil }, slog.New(slog.DiscardHandler))
	e := &broker.Event{Topic: "bench"}
	for b.Loop() {
		r.Received()
		r.Run(e)
	}
}

// BenchmarkInbox is the same through an Inbox (memory, http, mqtt).
func BenchmarkInbox(b *testing.B) {
	r := NewRunner("bench", "", func(context.Context, *broker.Event) error { return nil }, slog.New(slog.DiscardHandler))
	o, _ := broker.NewSubscribeOptions(broker.WithMaxPending(1 << 20))
	q := NewInbox(r, o)
	defer q.Stop(context.Background())
	e := &broker.Event{Topic: "bench"}
	b.ResetTimer()
	for range b.N {
		q.Offer(e)
	}
	for st := q.Stats(); st.Handled+st.Dropped < uint64(b.N); st = q.Stats() {
		runtime.Gosched()
	}
	b.ReportMetric(float64(q.Stats().Dropped)/float64(b.N), "dropped/op")
}
