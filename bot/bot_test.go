package bot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/shell"
	"github.com/microbot/microbot/internal/testenv"
)

func testTable(t *testing.T) *command.Table {
	t.Helper()
	tb := command.NewTable()
	err := tb.Register(
		&command.Command{Name: "sleep", Usage: "sleep [ms]", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			var ms int
			fmt.Sscan(req.Params()[0], &ms)
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
				return command.Text("slept " + req.Params()[0]), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}},
		&command.Command{Name: "hang", Usage: "hang", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			select {} // ignores its context
		}},
		&command.Command{Name: "panic", Usage: "panic", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			panic("boom")
		}},
		&command.Command{Name: "whoami", Usage: "whoami", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			md, _ := metadata.FromContext(ctx)
			id, _ := md.Get(bot.MetaUserID)
			in, _ := md.Get(bot.MetaInput)
			room, _ := md.Get(bot.MetaRoom)
			name, _ := md.Get(bot.MetaUserName)
			return command.Text(strings.Join([]string{in, id, name, room}, "|")), nil
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// runShell feeds lines to a bot on a console input and returns what it
// printed once the input ended.
func runShell(t *testing.T, tb *command.Table, lines string, opts ...bot.Option) string {
	t.Helper()
	out := &testenv.Buffer{}
	sh, err := shell.New(shell.Config{UserID: "U1", UserName: "Ann"}, shell.WithIO(strings.NewReader(lines), out))
	if err != nil {
		t.Fatal(err)
	}
	b := bot.New(tb, append([]bot.Option{bot.WithInputs(sh), bot.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bot did not end at the end of input")
	}
	return out.String()
}

func TestRepliesInOrderOfLines(t *testing.T) {
	got := runShell(t, testTable(t), "sleep 300\nsleep 1\n\n   \nsleep 100\nnope\n")
	want := "slept 300\nslept 1\nslept 100\nunknown command \"nope\" — type \"help\" for the list\n"
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestTimeoutPanicAndLongLines(t *testing.T) {
	lines := "hang\npanic\n" + strings.Repeat("x", 1<<20) + "\nsleep 5000\nwhoami\n"
	got := runShell(t, testTable(t), lines, bot.WithCommandTimeout(500*time.Millisecond))
	want := []string{
		"error: hang timed out after 500ms",
		"error: internal error (it was logged)",
		"error: message too long (1048576 bytes; the limit is 65536)",
		"error: sleep timed out after 500ms",
		"shell|U1|Ann|console",
	}
	if g := strings.Split(strings.TrimSpace(got), "\n"); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("output:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestMiddlewareSeesTheRequestInOrder(t *testing.T) {
	var mu sync.Mutex
	var trace []string
	mw := func(name string) bot.Middleware {
		return func(next bot.Handler) bot.Handler {
			return func(ctx context.Context, req *command.Request) *input.Reply {
				cmd := "<nil>"
				if req.Command != nil {
					cmd = req.Command.Name
				}
				mu.Lock()
				trace = append(trace, name+":"+cmd+":"+req.Event.UserID)
				mu.Unlock()
				if req.Command != nil && req.Command.Name == "panic" {
					return &input.Reply{Text: "denied", Error: true}
				}
				return next(ctx, req)
			}
		}
	}
	got := runShell(t, testTable(t), "whoami\npanic\nfoo\n", bot.WithMiddleware(mw("a"), mw("b")), bot.WithMaxConcurrent(1))
	if want := "shell|U1|Ann|console\ndenied\nunknown command \"foo\" — type \"help\" for the list\n"; got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	want := "a:whoami:U1 b:whoami:U1 a:panic:U1 a:<nil>:U1 b:<nil>:U1"
	if g := strings.Join(trace, " "); g != want {
		t.Errorf("trace = %s, want %s", g, want)
	}
}

func TestHandleIgnoresUnaddressed(t *testing.T) {
	b := bot.New(testTable(t), bot.WithLogger(slog.New(slog.DiscardHandler)))
	if rep := b.Handle(context.Background(), &input.Event{Text: "whoami"}); rep != nil {
		t.Errorf("unaddressed event got %+v", rep)
	}
	if rep := b.Handle(context.Background(), &input.Event{Text: "whoami", Addressed: true, UserID: "U\n2"}); rep == nil || rep.Text != "|U2||" {
		t.Errorf("addressed event got %+v", rep)
	}
}

// flaky is an input whose Stream fails a number of times, then delivers a
// few events and ends.
type flaky struct {
	mu       sync.Mutex
	fails    int
	err      error
	attempts []time.Time
	events   []*input.Event
	sent     chan string
}

func (f *flaky) String() string { return "flaky" }
func (f *flaky) Stream(ctx context.Context) (input.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, time.Now())
	if len(f.attempts) <= f.fails {
		return nil, f.err
	}
	return &flakyConn{f: f, events: f.events}, nil
}

type flakyConn struct {
	f      *flaky
	events []*input.Event
}

func (c *flakyConn) Recv(ctx context.Context) (*input.Event, error) {
	if len(c.events) == 0 {
		return nil, io.EOF
	}
	ev := c.events[0]
	c.events = c.events[1:]
	return ev, nil
}

func (c *flakyConn) Send(ctx context.Context, to *input.Event, r *input.Reply) error {
	c.f.sent <- r.Text
	return nil
}

func (c *flakyConn) Close() error { return nil }

// permanentErr is permanent the way input/xmpp marks its errors: by an Is
// method matching input.ErrPermanent.
type permanentErr struct{}

func (permanentErr) Error() string        { return "invalid_auth" }
func (permanentErr) Is(target error) bool { return target == input.ErrPermanent }

func TestInputRestartsWithBackoff(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		minTotal time.Duration // the waits between the tries add up to at least this
	}{
		// 20ms, 40ms, 80ms, each at least halved by the jitter: >= 70ms.
		{"transient", errors.New("connection refused"), 70 * time.Millisecond},
		// Permanent: every wait at the cap (200ms), at least halved: >= 300ms.
		{"permanent", fmt.Errorf("slack: rejected the bot token (invalid_auth): %w", input.ErrPermanent), 300 * time.Millisecond},
		{"permanent by an Is method", fmt.Errorf("auth: %w", permanentErr{}), 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{fails: 3, err: tt.err, sent: make(chan string, 10),
				events: []*input.Event{{Text: "whoami", Addressed: true, Input: "flaky", UserID: "U9"}, {Text: "chatter"}}}
			b := bot.New(testTable(t), bot.WithInputs(f), bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
			if err := b.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := <-f.sent; got != "flaky|U9||" {
				t.Errorf("reply = %q", got)
			}
			select {
			case r := <-f.sent:
				t.Errorf("unaddressed chatter got a reply %q", r)
			default:
			}
			if len(f.attempts) != 4 {
				t.Fatalf("%d attempts, want 4", len(f.attempts))
			}
			if total := f.attempts[3].Sub(f.attempts[0]); total < tt.minTotal {
				t.Errorf("tries spread over %v, want at least %v", total, tt.minTotal)
			}
		})
	}
}

func TestStopWaitsForRunningCommands(t *testing.T) {
	pr, pw := io.Pipe()
	out := &testenv.Buffer{}
	sh, err := shell.New(shell.Config{UserID: "U1"}, shell.WithIO(pr, out))
	if err != nil {
		t.Fatal(err)
	}
	tb := testTable(t)
	started := make(chan struct{})
	if err := tb.Put(&command.Command{Name: "slow", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
		close(started)
		time.Sleep(700 * time.Millisecond)
		return command.Text("slow done"), nil
	}}); err != nil {
		t.Fatal(err)
	}
	b := bot.New(tb, bot.WithInputs(sh), bot.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if _, err := io.WriteString(pw, "slow\n"); err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := out.String(); got != "slow done\n" {
		t.Errorf("output after stop = %q, want the running command's reply", got)
	}
	pw.Close()
}
