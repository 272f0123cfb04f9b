package bot_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/input"
)

// dropper is an input whose every connection opens, delivers one line of
// room chatter, stays up for life, then drops.
type dropper struct {
	life     time.Duration
	streamed chan time.Time // one per Stream call
}

func (d *dropper) String() string { return "dropper" }
func (d *dropper) Stream(ctx context.Context) (input.Conn, error) {
	select {
	case d.streamed <- time.Now():
	default:
	}
	return &dropperConn{life: d.life}, nil
}

type dropperConn struct {
	life time.Duration
	sent bool
}

func (c *dropperConn) Recv(ctx context.Context) (*input.Event, error) {
	if !c.sent {
		c.sent = true
		return &input.Event{Input: "dropper", Text: "chatter"}, nil
	}
	t := time.NewTimer(c.life)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, errors.New("socket dropped")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *dropperConn) Send(context.Context, *input.Event, *input.Reply) error { return nil }
func (c *dropperConn) Close() error                                           { return nil }

// waits records the retry_in of every reconnection the bot logs.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) Enabled(context.Context, slog.Level) bool { return true }
func (w *waits) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *waits) WithGroup(string) slog.Handler            { return w }
func (w *waits) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" && a.Value.Kind() == slog.KindDuration {
			w.mu.Lock()
			w.d = append(w.d, a.Value.Duration())
			w.mu.Unlock()
		}
		return true
	})
	return nil
}

func (w *waits) list() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func TestBackoffStartsOverOnlyAfterAStableConnection(t *testing.T) {
	const (
		first    = 5 * time.Millisecond
		attempts = 8
	)
	tests := []struct {
		name string
		life time.Duration // how long each connection stays up
		max  time.Duration // the backoff cap
		grow bool          // whether the waits must grow
	}{
		// Up for no time, though it delivered an event: each drop is one
		// more failure, the waits double (the cap, 10 s, is far).
		{"drops right after opening", 0, 10 * time.Second, true},
		// Up past the cap (shorter than bot.StableAfter): each drop
		// starts the backoff over.
		{"stays up a while", 150 * time.Millisecond, 100 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &dropper{life: tt.life, streamed: make(chan time.Time, 100)}
			rec := &waits{}
			b := bot.New(testTable(t), bot.WithInputs(in), bot.WithLogger(slog.New(rec)), bot.WithBackoff(first, tt.max))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx) }()

			var at []time.Time
			deadline := time.After(30 * time.Second)
			for len(at) < attempts {
				select {
				case ts := <-in.streamed:
					at = append(at, ts)
				case <-deadline:
					t.Fatalf("only %d connections in 30 s", len(at))
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			ws := rec.list()
			if len(ws) < attempts-1 {
				t.Fatalf("%d reconnections logged, want at least %d", len(ws), attempts-1)
			}
			for i := 1; i < attempts; i++ {
				// The i-th wait is between half and all of first·2^(i-1)
				// when growing, at most first when starting over (as logged,
				// rounded to the millisecond).
				full := first << (i - 1)
				w := ws[i-1]
				if tt.grow {
					if gap := at[i].Sub(at[i-1]); gap < full/2 {
						t.Errorf("connection %d opened %v after the one before, want at least %v: the backoff started over", i+1, gap, full/2)
					}
					if w < full/2-time.Millisecond {
						t.Errorf("wait %d = %v, want at least %v", i, w, full/2)
					}
				} else if w > first {
					t.Errorf("wait %d = %v after a connection up for %v, want at most %v: the backoff did not start over", i, w, tt.life, first)
				}
			}
		})
	}
}
