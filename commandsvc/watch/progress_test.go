package watch_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/broker"
	brokermem "github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
)

// progressSvc is a command service reporting progress with
// commandsvc.Progress: "slow a b c" reports a, b and c and answers "done";
// "late" answers at once and reports once it is let go (after its Exec
// returned); "steal" reports to the topic of the call before it. It keeps
// the progress topic of every call.
type progressSvc struct {
	mu      sync.Mutex
	topics  []string
	lateCtx context.Context
	lateErr chan error
}

func (p *progressSvc) exec(ctx context.Context, args []string) (string, error) {
	md, _ := metadata.FromContext(ctx)
	topic, _ := md.Get(commandsvc.MetaProgress)
	p.mu.Lock()
	p.topics = append(p.topics, topic)
	prev := ""
	if len(p.topics) > 1 {
		prev = p.topics[len(p.topics)-2]
	}
	p.mu.Unlock()
	switch args[1] {
	case "slow":
		for _, a := range args[2:] {
			if err := commandsvc.Progress(ctx, a); err != nil {
				return "", err
			}
		}
		return "done", nil
	case "late":
		p.mu.Lock()
		p.lateCtx = context.WithoutCancel(ctx)
		p.mu.Unlock()
		return "returned", nil
	case "steal":
		md[commandsvc.MetaProgress] = prev
		return "stole", commandsvc.Progress(metadata.NewContext(ctx, md), "a line for someone else's thread")
	}
	return "", fmt.Errorf("unknown %q", args[1])
}

// recorder is the bot's side of a command's progress: the lines shown, and
// any line that came after the command's reply.
type recorder struct {
	mu     sync.Mutex
	lines  []string
	closed bool
	late   []string
}

func (r *recorder) report(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.late = append(r.late, line)
		return
	}
	r.lines = append(r.lines, line)
}

func (r *recorder) close() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return slices.Clone(r.lines), slices.Clone(r.late)
}

func (r *recorder) lateLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.late)
}

// progressEnv is a watcher following progress on a memory broker that the
// command service "go.micro.bot.job" publishes on.
func progressEnv(t *testing.T, opts ...watch.Option) (*env, *progressSvc) {
	t.Helper()
	reg := memory.New()
	bus := brokermem.NewBus()
	connect := func() *brokermem.Broker {
		b := brokermem.New(brokermem.WithBus(bus))
		if err := b.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		return b
	}
	pub, err := client.New(client.WithRegistry(reg), client.WithBroker(connect()))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, reg, append([]watch.Option{watch.WithBroker(connect())}, opts...)...)
	svc := &progressSvc{}
	e.serve("go.micro.bot.job", commandsvc.Handler("job", "reports progress", svc.exec, commandsvc.WithPublisher(pub)))
	e.eventually("job in help", func() bool { return e.helpLine("job - reports progress") != "" })
	return e, svc
}

func (e *env) run(text string, r *recorder) *input.Reply {
	ctx := context.Background()
	if r != nil {
		ctx = command.NewProgressContext(ctx, r.report)
	}
	return e.bot.Handle(ctx, &input.Event{Input: "test", UserID: "U1", Addressed: true, Text: text})
}

// TestProgress: what a command service reports with commandsvc.Progress
// reaches the bot before Exec's answer; each call has a topic of its own,
// unguessable; a line published after Exec returned, or to the topic of
// another call, is not shown; without anyone to show it (no ProgressFunc)
// no topic is given and Progress does nothing.
func TestProgress(t *testing.T) {
	e, svc := progressEnv(t)

	r := &recorder{}
	rep := e.run("job slow step-1 step-2 step-3", r)
	lines, late := r.close()
	if rep.Error || rep.Text != "done" {
		t.Fatalf("reply %+v", rep)
	}
	if want := []string{"step-1", "step-2", "step-3"}; !slices.Equal(lines, want) || len(late) > 0 {
		t.Fatalf("progress before the reply %q (after it %q), want %q", lines, late, want)
	}

	r2 := &recorder{}
	if rep := e.run("job late", r2); rep.Text != "returned" {
		t.Fatalf("reply %+v", rep)
	}
	r2.close()
	svc.mu.Lock()
	lateCtx := svc.lateCtx
	svc.mu.Unlock()
	if err := commandsvc.Progress(lateCtx, "after the reply"); err != nil {
		t.Fatalf("late Progress: %v", err) // published; nobody listens any more
	}
	r3 := &recorder{}
	if rep := e.run("job steal", r3); rep.Error || rep.Text != "stole" {
		t.Fatalf("reply %+v", rep)
	}
	lines3, _ := r3.close()
	// One more call, through the same broker: the stray lines, had they
	// been shown, would have been by now.
	if rep := e.run("job slow x", &recorder{}); rep.Text != "done" {
		t.Fatalf("reply %+v", rep)
	}
	if l := r2.lateLines(); len(l) > 0 || len(lines3) > 0 {
		t.Errorf("shown: %q after the reply, %q in the thief's thread; want nothing", l, lines3)
	}

	svc.mu.Lock()
	topics := slices.Clone(svc.topics)
	svc.mu.Unlock()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(commandsvc.ProgressTopicPrefix) + `[0-9a-f]{32}$`)
	for i, tp := range topics {
		if !re.MatchString(tp) || slices.Index(topics, tp) != i {
			t.Errorf("topics %q: want each new, %s and 128 random bits", topics, commandsvc.ProgressTopicPrefix)
			break
		}
	}

	if rep := e.run("job slow quiet", nil); rep.Error || rep.Text != "done" {
		t.Fatalf("without progress: reply %+v", rep)
	}
	svc.mu.Lock()
	if tp := svc.topics[len(svc.topics)-1]; tp != "" {
		t.Errorf("without anyone to show it, the call was given topic %q", tp)
	}
	svc.mu.Unlock()
}

// stuckBroker never subscribes until its context ends.
type stuckBroker struct{}

func (stuckBroker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestProgressBrokerDown: a broker that does not subscribe holds the
// command up for the progress wait once; the next commands do not wait
// (nor warn again); every command answers.
func TestProgressBrokerDown(t *testing.T) {
	logs := &testenv.Buffer{}
	e, _ := progressEnv(t, watch.WithBroker(stuckBroker{}), watch.WithProgressWait(300*time.Millisecond),
		watch.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	start := time.Now()
	if rep := e.run("job slow a", &recorder{}); rep.Error || rep.Text != "done" {
		t.Fatalf("reply %+v", rep)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("first call took %v: want it to wait the progress wait", d)
	}
	for _, w := range []string{"b", "c"} {
		if rep := e.run("job slow "+w, &recorder{}); rep.Error || rep.Text != "done" {
			t.Fatalf("reply %+v", rep)
		}
	}
	if n := strings.Count(logs.String(), "the progress subscription is slow"); n != 1 {
		t.Errorf("%d warnings of a slow subscription, want 1 (the next calls do not wait):\n%s", n, logs)
	}
}
