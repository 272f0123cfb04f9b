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

	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/broker"
	brokerhttp "github.com/microbot/microbot/framework/broker/http"
	brokermem "github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
	pb "github.com/microbot/microbot/proto/bot"
)

// call is what a command service saw of one Exec call's progress.
type call struct{ topic, run string }

// progressSvc is a command service reporting progress with
// commandsvc.Progress: "slow a b c" reports a, b and c and answers "done";
// "late" answers at once, keeping its context for the test to report with
// after the answer; "hold X" reports "holding X", waits for the test to
// release X, reports "released X" and answers; "forge" publishes to the
// progress topic as another service could: with a run id of its own
// making, with none, and with the run id of the last "late" call (over).
// It keeps the topic and run id of every call.
type progressSvc struct {
	pub *client.Client
	srv *server.Server

	mu      sync.Mutex
	calls   []call
	lateCtx context.Context
	lateRun string
	holds   map[string]chan struct{}
}

func (p *progressSvc) exec(ctx context.Context, args []string) (string, error) {
	md, _ := metadata.FromContext(ctx)
	topic, _ := md.Get(commandsvc.MetaProgress)
	run, _ := md.Get(commandsvc.MetaProgressRun)
	p.mu.Lock()
	p.calls = append(p.calls, call{topic, run})
	lateRun := p.lateRun
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
		p.lateCtx, p.lateRun = context.WithoutCancel(ctx), run
		p.mu.Unlock()
		return "returned", nil
	case "hold":
		if err := commandsvc.Progress(ctx, "holding "+args[2]); err != nil {
			return "", err
		}
		select {
		case <-p.hold(args[2]):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if err := commandsvc.Progress(ctx, "released "+args[2]); err != nil {
			return "", err
		}
		return "held " + args[2], nil
	case "forge":
		for _, run := range []string{strings.Repeat("0", 32), lateRun} {
			fctx := metadata.NewContext(ctx, metadata.Metadata{commandsvc.MetaProgress: topic, commandsvc.MetaProgressRun: run})
			if err := commandsvc.Progress(fctx, "forged for run "+run); err != nil {
				return "", err
			}
		}
		// No run id at all: published by hand (Progress publishes nothing
		// without one).
		if err := p.pub.Publish(metadata.NewContext(ctx, metadata.Metadata{}), topic, &pb.Notification{Text: "forged for no run"},
			client.WithContentType("application/protobuf")); err != nil {
			return "", err
		}
		return "forged", nil
	}
	return "", fmt.Errorf("unknown %q", args[1])
}

// hold returns the channel that releases "hold name".
func (p *progressSvc) hold(name string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holds == nil {
		p.holds = map[string]chan struct{}{}
	}
	if p.holds[name] == nil {
		p.holds[name] = make(chan struct{})
	}
	return p.holds[name]
}

func (p *progressSvc) callList() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
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

func (r *recorder) shown() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

func (r *recorder) lateLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.late)
}

// outcomes counts what the progress hook is told.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) hook(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[outcome]++
}

func (o *outcomes) get(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}

// progressBrokers returns the bot's broker and the command service's, of
// kind "memory" (one bus), "http" (over reg) or "nats" (a nats-server of
// the test's), connected, disconnected when the test ends.
func progressBrokers(t testing.TB, kind string, reg registry.Registry, httpOpts ...brokerhttp.Option) (bot, svc broker.Broker) {
	t.Helper()
	switch kind {
	case "memory":
		bus := brokermem.NewBus()
		bot, svc = brokermem.New(brokermem.WithBus(bus)), brokermem.New(brokermem.WithBus(bus))
	case "http":
		for _, p := range []*broker.Broker{&bot, &svc} {
			hb, err := brokerhttp.New(append([]brokerhttp.Option{brokerhttp.WithRegistry(reg), brokerhttp.WithLogger(slog.New(slog.DiscardHandler))}, httpOpts...)...)
			if err != nil {
				t.Fatal(err)
			}
			*p = hb
		}
	case "nats":
		addr := natstest.Start(t).Addr
		bot, svc = natsBroker(t, addr), natsBroker(t, addr)
	default:
		t.Fatalf("no broker %q", kind)
	}
	connectBrokers(t, bot, svc)
	return bot, svc
}

// connectBrokers connects bs, and disconnects them when the test ends.
func connectBrokers(t testing.TB, bs ...broker.Broker) {
	t.Helper()
	for _, b := range bs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.Connect(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b.Disconnect(ctx)
		})
	}
}

// progressEnv is a watcher following progress on botB, and the command
// service "go.micro.bot.job" publishing on svcB; it returns once the job
// command is known and its progress followed.
func progressEnv(t *testing.T, reg registry.Registry, botB, svcB broker.Broker, opts ...watch.Option) (*env, *progressSvc) {
	t.Helper()
	pub, err := client.New(client.WithRegistry(reg), client.WithBroker(svcB))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	opts = append([]watch.Option{watch.WithBroker(botB), watch.WithCommandTimeout(20 * time.Second)}, opts...)
	e := newEnv(t, reg, opts...)
	e.bot = bot.New(e.table, bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithCommandTimeout(20*time.Second))
	svc := &progressSvc{pub: pub}
	svc.srv = e.serve("go.micro.bot.job", commandsvc.Handler("job", "reports progress", svc.exec, commandsvc.WithPublisher(pub)))
	e.eventually("job in help", func() bool { return e.helpLine("job - reports progress") != "" })
	e.eventually("progress followed", func() bool { return e.w.ProgressTopic() != "" })
	return e, svc
}

func (e *env) run(text string, r *recorder) *input.Reply {
	ctx := context.Background()
	if r != nil {
		ctx = command.NewProgressContext(ctx, r.report)
	}
	return e.bot.Handle(ctx, &input.Event{Input: "test", UserID: "U1", Addressed: true, Text: text})
}

// TestProgress, on the memory, http and nats brokers: what a
// command service reports with commandsvc.Progress reaches the bot before
// Exec's answer; every call is given the watcher's one topic and a run id
// of its own, unguessable; a line published after Exec returned, or for a
// run id forged, over or missing, is dropped and counted, while the run
// running meanwhile shows its own lines only; without anyone to show it
// (no ProgressFunc) no topic is given and Progress does nothing.
func TestProgress(t *testing.T) {
	for _, kind := range []string{"memory", "http", "nats"} {
		t.Run(kind, func(t *testing.T) {
			reg := memory.New()
			botB, svcB := progressBrokers(t, kind, reg)
			var out outcomes
			e, svc := progressEnv(t, reg, botB, svcB, watch.WithProgressHook(out.hook))

			r := &recorder{}
			rep := e.run("job slow step-1 step-2 step-3", r)
			lines, late := r.close()
			if rep.Error || rep.Text != "done" {
				t.Fatalf("reply %+v", rep)
			}
			if want := []string{"step-1", "step-2", "step-3"}; !slices.Equal(lines, want) || len(late) > 0 {
				t.Fatalf("progress before the reply %q (after it %q), want %q", lines, late, want)
			}

			// A line after the answer: published, and dropped.
			r2 := &recorder{}
			if rep := e.run("job late", r2); rep.Text != "returned" {
				t.Fatalf("reply %+v", rep)
			}
			r2.close()
			svc.mu.Lock()
			lateCtx := svc.lateCtx
			svc.mu.Unlock()
			if err := commandsvc.Progress(lateCtx, "after the reply"); err != nil {
				t.Fatalf("late Progress: %v", err)
			}
			e.eventually("the late line dropped", func() bool { return out.get(watch.ProgressDropped) == 1 })

			// Forged lines while another run is under way: that run shows
			// its lines only, the forged ones are dropped.
			held := &recorder{}
			heldRep := make(chan *input.Reply, 1)
			go func() { heldRep <- e.run("job hold A", held) }()
			e.eventually("the held run's first line", func() bool { return slices.Equal(held.shown(), []string{"holding A"}) })
			forger := &recorder{}
			if rep := e.run("job forge", forger); rep.Error || rep.Text != "forged" {
				t.Fatalf("reply %+v", rep)
			}
			e.eventually("3 forged lines dropped", func() bool { return out.get(watch.ProgressDropped) == 4 })
			close(svc.hold("A"))
			if rep := <-heldRep; rep.Error || rep.Text != "held A" {
				t.Fatalf("reply %+v", rep)
			}
			if lines, late := held.close(); !slices.Equal(lines, []string{"holding A", "released A"}) || len(late) > 0 {
				t.Errorf("the held run showed %q (after its reply %q), want its own two lines", lines, late)
			}
			if lines, _ := forger.close(); len(lines) > 0 {
				t.Errorf("the forger's own thread showed %q", lines)
			}
			if l := r2.lateLines(); len(l) > 0 {
				t.Errorf("shown after the reply: %q", l)
			}
			if got := out.get(watch.ProgressShown); got != 5 {
				t.Errorf("%d lines counted shown, want 5", got)
			}

			topic := e.w.ProgressTopic()
			topicRE := regexp.MustCompile(`^` + regexp.QuoteMeta(commandsvc.ProgressTopicPrefix) + `[0-9a-f]{32}$`)
			runRE := regexp.MustCompile(`^[0-9a-f]{32}$`)
			if !topicRE.MatchString(topic) {
				t.Errorf("topic %q: want %s and 128 random bits", topic, commandsvc.ProgressTopicPrefix)
			}
			calls := svc.callList()
			runs := map[string]bool{}
			for _, c := range calls {
				if c.topic != topic || !runRE.MatchString(c.run) || runs[c.run] {
					t.Errorf("calls %q: want each given the topic %s and a new run id of 128 random bits", calls, topic)
					break
				}
				runs[c.run] = true
			}

			if rep := e.run("job slow quiet", nil); rep.Error || rep.Text != "done" {
				t.Fatalf("without progress: reply %+v", rep)
			}
			if c := svc.callList(); c[len(c)-1] != (call{}) {
				t.Errorf("without anyone to show it, the call was given %+v", c[len(c)-1])
			}
		})
	}
}

// TestProgressConcurrentRuns: commands running at once each show their own
// lines, in order, and nothing of the others'.
func TestProgressConcurrentRuns(t *testing.T) {
	for _, kind := range []string{"memory", "http", "nats"} {
		t.Run(kind, func(t *testing.T) {
			reg := memory.New()
			botB, svcB := progressBrokers(t, kind, reg)
			e, _ := progressEnv(t, reg, botB, svcB)
			const n = 8
			recs := make([]*recorder, n)
			var wg sync.WaitGroup
			for i := range n {
				recs[i] = &recorder{}
				wg.Go(func() {
					if rep := e.run(fmt.Sprintf("job slow r%d-1 r%d-2 r%d-3", i, i, i), recs[i]); rep.Error || rep.Text != "done" {
						t.Errorf("run %d: reply %+v", i, rep)
					}
				})
			}
			wg.Wait()
			for i, r := range recs {
				want := []string{fmt.Sprintf("r%d-1", i), fmt.Sprintf("r%d-2", i), fmt.Sprintf("r%d-3", i)}
				if lines, late := r.close(); !slices.Equal(lines, want) || len(late) > 0 {
					t.Errorf("run %d showed %q (after its reply %q), want %q", i, lines, late, want)
				}
			}
		})
	}
}

// countingRegistry counts the registrations and deregistrations made
// through it, by service name.
type countingRegistry struct {
	registry.Registry
	mu           sync.Mutex
	reg, dereg   map[string]int
	regs, deregs int
}

func (c *countingRegistry) Register(ctx context.Context, s *registry.Service, opts ...registry.RegisterOption) error {
	c.mu.Lock()
	c.reg[s.Name]++
	c.regs++
	c.mu.Unlock()
	return c.Registry.Register(ctx, s, opts...)
}

func (c *countingRegistry) Deregister(ctx context.Context, s *registry.Service) error {
	c.mu.Lock()
	c.dereg[s.Name]++
	c.deregs++
	c.mu.Unlock()
	return c.Registry.Deregister(ctx, s)
}

func (c *countingRegistry) counts() (regs, deregs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.regs, c.deregs
}

func (c *countingRegistry) of(name string) (regs, deregs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reg[name], c.dereg[name]
}

// TestProgressRegistryWrites: on the http broker, following the progress
// of commands is one registration of the bot's progress topic, made when
// the watcher starts; running commands, with progress or without, writes
// nothing more to the registry; the watcher's end deregisters the topic.
func TestProgressRegistryWrites(t *testing.T) {
	reg := &countingRegistry{Registry: memory.New(), reg: map[string]int{}, dereg: map[string]int{}}
	botB, svcB := progressBrokers(t, "http", reg, brokerhttp.WithRegisterInterval(time.Hour))
	e, _ := progressEnv(t, reg, botB, svcB)
	topic := broker.TopicServicePrefix + e.w.ProgressTopic()
	if r, d := reg.of(topic); r != 1 || d != 0 {
		t.Fatalf("the progress topic registered %d times, deregistered %d times; want once, never", r, d)
	}
	regs, deregs := reg.counts()
	const n = 20
	for i := range n {
		r := &recorder{}
		if rep := e.run(fmt.Sprintf("job slow a%d b%d", i, i), r); rep.Error || rep.Text != "done" {
			t.Fatalf("reply %+v", rep)
		}
		if lines, _ := r.close(); len(lines) != 2 {
			t.Fatalf("command %d showed %q", i, lines)
		}
	}
	if r, d := reg.counts(); r != regs || d != deregs {
		t.Errorf("%d commands made %d registrations and %d deregistrations, want none", n, r-regs, d-deregs)
	}
	e.stopWatcher()
	if r, d := reg.of(topic); r != 1 || d != 1 {
		t.Errorf("after the watcher's end the progress topic was registered %d times, deregistered %d times; want once each", r, d)
	}
}

// gatedBroker is a memory broker whose Subscribe fails while it is closed:
// a broker down at the bot's start.
type gatedBroker struct {
	*brokermem.Broker
	mu       sync.Mutex
	open     bool
	attempts int
}

func (g *gatedBroker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	g.mu.Lock()
	g.attempts++
	open := g.open
	g.mu.Unlock()
	if !open {
		return nil, fmt.Errorf("gated: %w", broker.ErrUnavailable)
	}
	return g.Broker.Subscribe(ctx, topic, h, opts...)
}

func (g *gatedBroker) set(open bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	return g.attempts
}

// TestProgressBrokerDown: while the progress topic cannot be subscribed
// to (a broker down at start), commands run at once without a topic,
// warned about once; the watcher keeps trying, and once the broker is
// back the progress shows.
func TestProgressBrokerDown(t *testing.T) {
	reg := memory.New()
	memB, svcB := progressBrokers(t, "memory", reg)
	gate := &gatedBroker{Broker: memB.(*brokermem.Broker)}
	logs := &testenv.Buffer{}
	pub, err := client.New(client.WithRegistry(reg), client.WithBroker(svcB))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	e := newEnv(t, reg, watch.WithBroker(gate), watch.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	svc := &progressSvc{pub: pub}
	e.serve("go.micro.bot.job", commandsvc.Handler("job", "reports progress", svc.exec, commandsvc.WithPublisher(pub)))
	e.eventually("job in help", func() bool { return e.helpLine("job - reports progress") != "" })
	e.eventually("a second attempt to subscribe", func() bool { return gate.set(false) >= 2 })
	for _, w := range []string{"a", "b"} {
		r := &recorder{}
		if rep := e.run("job slow "+w, r); rep.Error || rep.Text != "done" {
			t.Fatalf("reply %+v", rep)
		}
		if lines, _ := r.close(); len(lines) > 0 {
			t.Errorf("shown %q without a subscription", lines)
		}
	}
	if c := svc.callList(); c[0] != (call{}) || c[1] != (call{}) {
		t.Errorf("without a subscription, the calls were given %+v", c)
	}
	if n := strings.Count(logs.String(), "following the progress of commands failed"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
	if e.w.ProgressTopic() != "" {
		t.Error("a progress topic without a subscription")
	}

	gate.set(true)
	e.eventually("progress followed", func() bool { return e.w.ProgressTopic() != "" })
	r := &recorder{}
	if rep := e.run("job slow c", r); rep.Error || rep.Text != "done" {
		t.Fatalf("reply %+v", rep)
	}
	if lines, _ := r.close(); !slices.Equal(lines, []string{"c"}) {
		t.Errorf("once subscribed, shown %q, want [c]", lines)
	}
}

// TestProgressLines: how a progress message becomes lines.
func TestProgressLines(t *testing.T) {
	reg := memory.New()
	botB, svcB := progressBrokers(t, "memory", reg)
	var out outcomes
	e, svc := progressEnv(t, reg, botB, svcB, watch.WithProgressHook(out.hook))
	note := func(n *pb.Notification) []byte {
		b, err := proto.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i, tt := range []struct {
		name   string
		header map[string]string
		body   []byte
		want   []string // nil: undecodable
	}{
		{"notification", map[string]string{"Content-Type": "application/protobuf", pb.HeaderMessageType: pb.NotificationType},
			note(&pb.Notification{Title: "deploy", Text: "step 1\n\nstep 2"}), []string{"deploy: step 1", "step 2"}},
		{"untyped protobuf, as go-micro publishes one", map[string]string{"Content-Type": "application/protobuf"},
			note(&pb.Notification{Text: "from go-micro"}), []string{"from go-micro"}},
		{"JSON notification", map[string]string{"Content-Type": "application/json"}, []byte(`{"title": "only a title"}`), []string{"only a title"}},
		{"JSON string", map[string]string{"Content-Type": "application/json"}, []byte(`"a string"`), []string{"a string"}},
		{"other JSON", map[string]string{"Content-Type": "application/json"}, []byte("{\"step\": 2,\n \"of\": 5}"), []string{`{"step":2,"of":5}`}},
		{"text", map[string]string{"Content-Type": "text/plain"}, []byte("plain\ntext"), []string{"plain", "text"}},
		{"protobuf of another type", map[string]string{"Content-Type": "application/protobuf", pb.HeaderMessageType: "acme.Step"}, []byte("\x08\x01"), nil},
		{"binary", map[string]string{"Content-Type": "image/png"}, []byte("\x89PNG"), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			undecodable := out.get(watch.ProgressUndecodable)
			name := fmt.Sprintf("L%d", i)
			r := &recorder{}
			rep := make(chan *input.Reply, 1)
			go func() { rep <- e.run("job hold "+name, r) }()
			e.eventually("the first line", func() bool { return len(r.shown()) == 1 })
			c := svc.callList()
			run := c[len(c)-1]
			h := map[string]string{commandsvc.MetaProgressRun: run.run}
			for k, v := range tt.header {
				h[k] = v
			}
			if err := svcB.Publish(context.Background(), run.topic, &broker.Message{Header: h, Body: tt.body}); err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				e.eventually("undecodable counted", func() bool { return out.get(watch.ProgressUndecodable) == undecodable+1 })
			} else {
				e.eventually("the lines", func() bool { return len(r.shown()) == 1+len(tt.want) })
			}
			close(svc.hold(name))
			<-rep
			lines, _ := r.close()
			want := append(append([]string{"holding " + name}, tt.want...), "released "+name)
			if !slices.Equal(lines, want) {
				t.Errorf("shown %q, want %q", lines, want)
			}
		})
	}
}
