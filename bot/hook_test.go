package bot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/input"
)

// hookCalls records the calls of an input hook, one line each.
type hookCalls struct {
	mu  sync.Mutex
	got []string
}

// hook is the input hook (bot.WithInputHook).
func (h *hookCalls) hook(name string, up bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case up && err == nil:
		h.got = append(h.got, name+" up")
	case !up && errors.Is(err, io.EOF):
		h.got = append(h.got, name+" ended")
	case !up && err != nil:
		h.got = append(h.got, name+" down: "+err.Error())
	default:
		h.got = append(h.got, fmt.Sprintf("%s bad call up=%v err=%v", name, up, err))
	}
}

// check fails unless the calls so far are want.
func (h *hookCalls) check(t *testing.T, want []string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.got, want) {
		t.Errorf("hook calls:\n got %q\nwant %q", h.got, want)
	}
}

func TestInputHook(t *testing.T) {
	var calls hookCalls
	f := &flaky{fails: 2, err: errors.New("connection refused"), sent: make(chan string, 10),
		events: []*input.Event{{Text: "whoami", Addressed: true, Input: "flaky", UserID: "U9"}}}
	b := bot.New(testTable(t), bot.WithInputs(f), bot.WithLogger(slog.New(slog.DiscardHandler)),
		bot.WithBackoff(time.Millisecond, 5*time.Millisecond), bot.WithInputHook(calls.hook))
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"flaky down: connection refused", "flaky down: connection refused", "flaky up", "flaky ended"}
	calls.check(t, want)
}
