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
	"github.com/microbot/microbot/input"
)

// progressTable has commands that report progress: "steps N" reports N
// lines at once and returns; "keep" keeps its ProgressFunc and returns;
// "late" reports through the kept one (a command that reports after it
// returned) and returns.
func progressTable(t *testing.T) *command.Table {
	t.Helper()
	var mu sync.Mutex
	var kept command.ProgressFunc
	tb := command.NewTable()
	err := tb.Register(
		&command.Command{Name: "steps", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			var n int
			fmt.Sscan(req.Params()[0], &n)
			report := command.ProgressFrom(ctx)
			for i := 1; i <= n; i++ {
				report(fmt.Sprintf("step %d/%d", i, n))
			}
			return command.Text("done"), nil
		}},
		&command.Command{Name: "keep", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			mu.Lock()
			kept = command.ProgressFrom(ctx)
			mu.Unlock()
			return command.Text("kept"), nil
		}},
		&command.Command{Name: "late", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			mu.Lock()
			kept("a line reported after its command returned")
			mu.Unlock()
			return command.Text("ok"), nil
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestProgressOnTheConsole: progress lines come before the reply, in
// order; more than fit are folded and counted; a line reported after the
// command returned is not shown.
func TestProgressOnTheConsole(t *testing.T) {
	tb := progressTable(t)
	got := runShell(t, tb, "steps 3\nkeep\nlate\n", bot.WithProgressInterval(time.Millisecond))
	if want := "step 1/3\nstep 2/3\nstep 3/3\ndone\nkept\nok\n"; got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}

	got = runShell(t, tb, "steps 25\n", bot.WithProgressInterval(time.Hour))
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if lines[len(lines)-1] != "done" {
		t.Fatalf("output:\n%s\nwant the reply last", got)
	}
	seen, skipped := 0, 0
	for _, l := range lines[:len(lines)-1] {
		var n int
		switch {
		case strings.HasPrefix(l, "step "):
			seen++
		case strings.HasSuffix(l, " lines skipped)"):
			fmt.Sscanf(l, "(%d lines", &n)
			skipped += n
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
	if seen+skipped != 25 || !strings.Contains(got, "step 16/25\nstep 17/25") || !strings.HasSuffix(got, "step 25/25\ndone\n") {
		t.Errorf("output:\n%s\nwant every line shown or counted (%d + %d), the last ten shown", got, seen, skipped)
	}
}

// editing is an input whose connection edits messages (input.Editor) and
// records what it is asked, in order; its events are given by the test.
type editing struct {
	events chan *input.Event
	failAt int // SendEditable fails if > 0

	mu     sync.Mutex
	ops    []string
	change chan struct{}
}

func newEditing() *editing {
	return &editing{events: make(chan *input.Event, 8), change: make(chan struct{}, 100)}
}

func (e *editing) String() string                                 { return "editing" }
func (e *editing) Stream(ctx context.Context) (input.Conn, error) { return e, nil }
func (e *editing) Close() error                                   { return nil }

func (e *editing) Recv(ctx context.Context) (*input.Event, error) {
	select {
	case ev, ok := <-e.events:
		if !ok {
			return nil, io.EOF
		}
		return ev, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *editing) record(op string) {
	e.mu.Lock()
	e.ops = append(e.ops, op)
	e.mu.Unlock()
	e.change <- struct{}{}
}

func (e *editing) Send(ctx context.Context, to *input.Event, reply *input.Reply) error {
	e.record(fmt.Sprintf("send(%s) progress=%v %q", to.Room, reply.Progress, reply.Text))
	return nil
}

func (e *editing) SendEditable(ctx context.Context, to *input.Event, reply *input.Reply) (string, error) {
	if e.failAt > 0 {
		e.record("sendEditable failed")
		return "", errors.New("not_in_channel")
	}
	e.record(fmt.Sprintf("sendEditable(%s) %q", to.Room, reply.Text))
	return "m1", nil
}

func (e *editing) Edit(ctx context.Context, to *input.Event, id string, reply *input.Reply) error {
	e.record(fmt.Sprintf("edit(%s, %s) %q", to.Room, id, reply.Text))
	return nil
}

func (e *editing) waitOps(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		e.mu.Lock()
		ops := append([]string(nil), e.ops...)
		e.mu.Unlock()
		if len(ops) >= n {
			return ops
		}
		select {
		case <-e.change:
		case <-deadline:
			t.Fatalf("waiting for %d operations, have %q", n, ops)
		}
	}
}

// TestProgressEditedInPlace: on an input.Editor, the progress is one
// message, posted at the first line and edited with the next, before the
// reply; when the progress message cannot be posted, the reply still
// comes and nothing more is tried.
func TestProgressEditedInPlace(t *testing.T) {
	in := newEditing()
	step := make(chan struct{})
	tb := command.NewTable()
	err := tb.Register(&command.Command{Name: "deploy", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
		report := command.ProgressFrom(ctx)
		report("step 1/2\x1b[2J")
		<-step
		report("step 2/2")
		<-step
		report("step 3/2")
		return command.Text("deployed"), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := bot.New(tb, bot.WithInputs(in), bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithProgressInterval(time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	in.events <- &input.Event{Room: "C1", Addressed: true, Text: "deploy"}
	in.waitOps(t, 1)
	step <- struct{}{}
	in.waitOps(t, 2)
	step <- struct{}{}
	ops := in.waitOps(t, 4)
	want := []string{
		`sendEditable(C1) "step 1/2\\x1b[2J"`,
		`edit(C1, m1) "step 1/2\\x1b[2J\nstep 2/2"`,
		`edit(C1, m1) "step 1/2\\x1b[2J\nstep 2/2\nstep 3/2"`,
		`send(C1) progress=false "deployed"`,
	}
	if strings.Join(ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("operations:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(want, "\n"))
	}

	in.failAt = 1
	in.events <- &input.Event{Room: "C2", Addressed: true, Text: "deploy"}
	in.waitOps(t, 5)
	step <- struct{}{}
	step <- struct{}{}
	ops = in.waitOps(t, 6)
	if got := strings.Join(ops[4:], "\n"); got != "sendEditable failed\n"+`send(C2) progress=false "deployed"` {
		t.Errorf("after a failed progress message:\n%s\nwant the reply alone", got)
	}
	close(in.events)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestProgressLineBounds(t *testing.T) {
	tb := command.NewTable()
	long := strings.Repeat("é", bot.MaxProgressLine)
	err := tb.Register(&command.Command{Name: "say", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
		report := command.ProgressFrom(ctx)
		report("  \n ")            // blank: nothing
		report("two\nlines")       // one line
		report(long)               // cut
		report("\u202eevil\u202c") // bidi controls shown escaped
		return command.Text("ok"), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := runShell(t, tb, "say\n", bot.WithProgressInterval(time.Hour))
	lines := strings.Split(got, "\n")
	if len(lines) != 5 || lines[0] != `two\nlines` || lines[2] != `\u202eevil\u202c` || lines[3] != "ok" {
		t.Fatalf("output %q", got)
	}
	if l := lines[1]; len(l) > bot.MaxProgressLine || !strings.HasSuffix(l, "é…") {
		t.Errorf("long line: %d bytes, ends %q; want it cut at %d bytes on a character", len(l), l[len(l)-8:], bot.MaxProgressLine)
	}
}
