package deliver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/internal/testenv"
)

// TestLogsRateLimited: a storm of failures makes one log line, the next
// says how many were left out, and every failure is counted.
func TestLogsRateLimited(t *testing.T) {
	var buf testenv.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := NewRunner("alerts", "pager", func(context.Context, *broker.Event) error { return errors.New("nope") }, log)
	for range 100 {
		r.Received()
		r.Run(&broker.Event{Topic: "alerts", Message: broker.Message{Body: []byte("12345")}})
	}
	if st := r.Stats(); st.Failed != 100 || st.Received != 100 {
		t.Fatalf("stats %+v", st)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "topic=alerts") || !strings.Contains(lines[0], "queue=pager") ||
		!strings.Contains(lines[0], "err=nope") || !strings.Contains(lines[0], "size=5") {
		t.Fatalf("logged %q, want one line with topic, queue, error and size", lines)
	}
	r.lastLog = time.Now().Add(-2 * logEvery) // as if a second had passed
	r.Received()
	r.Run(&broker.Event{Topic: "alerts"})
	if out := buf.String(); !strings.Contains(out, "suppressed=99") {
		t.Errorf("the next line does not say 99 were left out:\n%s", out)
	}
}

// TestStopWaits: Stop returns once the running handler has returned, or
// says the deadline passed; nothing runs afterwards.
func TestStopWaits(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	r := NewRunner("t", "", func(ctx context.Context, e *broker.Event) error {
		close(started)
		<-release // ignores its context on purpose
		return nil
	}, slog.New(slog.DiscardHandler))
	go r.Run(&broker.Event{})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Stop(ctx); err == nil || !strings.Contains(err.Error(), "did not return before the deadline") {
		t.Fatalf("Stop with the handler stuck = %v", err)
	}
	close(release)
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after the handler returned = %v", err)
	}
	r.Run(&broker.Event{}) // dropped, not run (the handler would close started twice)
	if st := r.Stats(); st.Handled != 1 || st.Dropped != 1 {
		t.Errorf("stats %+v, want 1 handled and 1 dropped", st)
	}
}
