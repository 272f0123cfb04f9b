package nats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/internal/testenv"
)

// TestFlushServerAway: Flush respects its context when the server does not
// answer (paused: the connection holds, no PONG comes), and fails at once
// with ErrUnavailable while the connection is down (the server stopped);
// once the server is back, it works again. (The order Flush promises is in
// the conformance suite.)
func TestFlushServerAway(t *testing.T) {
	srv := natstest.Start(t)
	b := connected(t, nats.FormatNATS, srv.Addr).(broker.Flusher)
	flush := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return b.Flush(ctx)
	}
	if err := flush(wait); err != nil {
		t.Fatalf("Flush: %v", err)
	}

	srv.Pause()
	err := flush(200 * time.Millisecond)
	srv.Resume()
	if !errors.Is(err, broker.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush to a paused server = %v, want ErrUnavailable and the context's deadline", err)
	}
	if err := flush(wait); err != nil {
		t.Fatalf("Flush once resumed: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "Flush fails with ErrUnavailable at once while the server is down", func() bool {
		start := time.Now()
		err := flush(wait)
		return errors.Is(err, broker.ErrUnavailable) && time.Since(start) < wait/2
	})
	srv.Start()
	testenv.Eventually(t, wait, "Flush works once the server is back", func() bool { return flush(wait) == nil })
}
