package bot_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/input"
)

// selfHealing is an input whose connection reconnects by itself (as XMPP's
// does) and reports it through bot.Reconnector.
type selfHealing struct{ flaky }

func (s *selfHealing) String() string { return "healing" }
func (s *selfHealing) Stream(ctx context.Context) (input.Conn, error) {
	return &healingConn{}, nil
}

type healingConn struct {
	mu     sync.Mutex
	report func(up bool, err error)
}

var _ bot.Reconnector = (*healingConn)(nil)

func (c *healingConn) ReportConnection(report func(up bool, err error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report = report
}

// Recv breaks and heals the link behind the bot's back, then ends.
func (c *healingConn) Recv(ctx context.Context) (*input.Event, error) {
	c.mu.Lock()
	report := c.report
	c.mu.Unlock()
	if report == nil {
		return nil, errors.New("no report function given")
	}
	report(false, errors.New("stream closed"))
	report(false, errors.New("connection refused"))
	report(true, nil)
	return nil, io.EOF
}

func (c *healingConn) Send(ctx context.Context, to *input.Event, r *input.Reply) error { return nil }
func (c *healingConn) Close() error                                                    { return nil }

func TestReconnectorReportsReachTheHook(t *testing.T) {
	var calls hookCalls
	b := bot.New(testTable(t), bot.WithInputs(&selfHealing{}), bot.WithLogger(slog.New(slog.DiscardHandler)),
		bot.WithBackoff(time.Millisecond, 5*time.Millisecond), bot.WithInputHook(calls.hook))
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"healing up", "healing down: stream closed", "healing down: connection refused", "healing up", "healing ended"}
	calls.check(t, want)
}
