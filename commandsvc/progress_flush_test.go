package commandsvc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	pb "github.com/microbot/microbot/proto/bot"
)

// execContext returns the context Exec gets from a handler made with
// WithPublisher(pub), following the progress on topic as run r1.
func execContext(t testing.TB, pub commandsvc.Publisher, topic string) context.Context {
	t.Helper()
	var ctx context.Context
	h := commandsvc.Handler("job", "", func(c context.Context, _ []string) (string, error) { ctx = c; return "", nil }, commandsvc.WithPublisher(pub))
	in := metadata.NewContext(context.Background(), metadata.Metadata{commandsvc.MetaProgress: topic, commandsvc.MetaProgressRun: "r1"})
	if err := h.Exec(in, &pb.ExecRequest{Args: []string{"job"}}, &pb.ExecResponse{}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func connect(t *testing.T, b broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b.Disconnect(ctx)
	})
}

// TestProgressFlushesNATS: on NATS, Progress returns once the server has
// routed the line: a subscriber that flushes its own connection then has
// it, without waiting. When the server does not confirm, Progress says so.
func TestProgressFlushesNATS(t *testing.T) {
	srv := natstest.Start(t)
	newNATS := func() *nats.Broker {
		b, err := nats.New(nats.WithAddrs(srv.Addr))
		if err != nil {
			t.Fatal(err)
		}
		connect(t, b)
		return b
	}
	svcB, botB := newNATS(), newNATS()
	c, err := client.New(client.WithBroker(svcB))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := commandsvc.ProgressTopicPrefix + "flush"
	sub, err := botB.Subscribe(context.Background(), topic, func(context.Context, *broker.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx := execContext(t, c, topic)
	for i := 1; i <= 20; i++ {
		if err := commandsvc.Progress(ctx, "a step"); err != nil {
			t.Fatal(err)
		}
		fctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := botB.Flush(fctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// At least: nats's Stats may count a message just handled a moment
		// more as still pending.
		if got := sub.Stats().Received; got < uint64(i) {
			t.Fatalf("after %d Progress calls and the subscriber's flush, %d lines received", i, got)
		}
	}

	srv.Pause()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = commandsvc.Progress(short, "unconfirmed")
	cancel()
	srv.Resume()
	if !errors.Is(err, broker.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Progress to a paused server = %v, want an error wrapping ErrUnavailable and the deadline", err)
	}
}

// noFlush is a broker that cannot confirm what went through (as mqtt).
type noFlush struct{ broker.Broker }

// TestProgressWithoutFlush: with a broker that cannot flush, Progress
// publishes and returns nil.
func TestProgressWithoutFlush(t *testing.T) {
	b := memory.New()
	connect(t, b)
	c, err := client.New(client.WithBroker(noFlush{b}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := commandsvc.ProgressTopicPrefix + "noflush"
	got := make(chan *broker.Event, 1)
	if _, err := b.Subscribe(context.Background(), topic, func(_ context.Context, e *broker.Event) error { got <- e; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := commandsvc.Progress(execContext(t, c, topic), "step 1"); err != nil {
		t.Fatalf("Progress = %v, want nil", err)
	}
	if e := <-got; e.Topic != topic || e.Header[commandsvc.MetaProgressRun] != "r1" {
		t.Errorf("published %+v on %s", e.Header, e.Topic)
	}
}
