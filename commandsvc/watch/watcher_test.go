package watch_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
	pb "github.com/microbot/microbot/proto/bot"
)

// env is a registry, a client, a command table with the built-ins, and a
// watcher running over them.
type env struct {
	t     *testing.T
	reg   registry.Registry
	c     *client.Client
	table *command.Table
	w     *watch.Watcher
	bot   *bot.Bot
	// stopWatcher stops the watcher and waits for its Run to return (the
	// test's cleanup does it too).
	stopWatcher func()
}

func newEnv(t *testing.T, reg registry.Registry, opts ...watch.Option) *env {
	t.Helper()
	if reg == nil {
		reg = memory.New()
	}
	c, err := client.New(client.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	table := command.NewTable()
	if err := command.RegisterBuiltins(table, reg, c); err != nil {
		t.Fatal(err)
	}
	opts = append([]watch.Option{watch.WithLogger(slog.New(slog.DiscardHandler)), watch.WithHelpBackoff(20*time.Millisecond, 200*time.Millisecond),
		watch.WithWatchBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)
	w := watch.New(reg, c, table, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stopWatcher := func() { cancel(); <-done }
	t.Cleanup(stopWatcher)
	return &env{t: t, reg: reg, c: c, table: table, w: w, stopWatcher: stopWatcher,
		bot: bot.New(table, bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithCommandTimeout(2*time.Second))}
}

// say runs a line as user U1 and returns the reply.
func (e *env) say(text string) *input.Reply {
	return e.bot.Handle(context.Background(), &input.Event{Input: "test", UserID: "U1", Addressed: true, Text: text})
}

// eventually polls cond for up to 20 s.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	testenv.Eventually(e.t, 20*time.Second, what, cond)
}

func (e *env) helpLine(prefix string) string {
	for _, l := range strings.Split(e.say("help").Text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// cmdHandler is a Command handler for tests.
type cmdHandler struct {
	usage     string
	helpFails atomic.Int32 // Help fails this many more times
	execs     atomic.Int32
	execErr   error // returned as an RPC error
	mu        sync.Mutex
	lastMD    metadata.Metadata
}

func (h *cmdHandler) Help(ctx context.Context, req *pb.HelpRequest, rsp *pb.HelpResponse) error {
	if h.helpFails.Add(-1) >= 0 {
		return errors.New("not ready")
	}
	rsp.Usage, rsp.Description = h.usage, "a test command"
	return nil
}

func (h *cmdHandler) Exec(ctx context.Context, req *pb.ExecRequest, rsp *pb.ExecResponse) error {
	h.execs.Add(1)
	md, _ := metadata.FromContext(ctx)
	h.mu.Lock()
	h.lastMD = md
	h.mu.Unlock()
	if h.execErr != nil {
		return h.execErr
	}
	if len(req.Args) > 1 && req.Args[1] == "fail" {
		rsp.Error = "it failed on purpose"
		return nil
	}
	rsp.Result = []byte("got " + strings.Join(req.Args, ","))
	return nil
}

// serve starts a node of service name serving h.
func (e *env) serve(name string, h pb.CommandHandler) *server.Server {
	e.t.Helper()
	s, err := server.New(server.WithName(name), server.WithRegistry(e.reg), server.WithRegisterTTL(time.Minute))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := pb.RegisterCommandHandler(s, h); err != nil {
		e.t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func stop(t *testing.T, s *server.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestServiceCommandLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	h := &cmdHandler{usage: "deploy [app]"}
	n1 := e.serve("go.micro.bot.deploy", h)
	n2 := e.serve("go.micro.bot.deploy", h)
	e.eventually("deploy in help", func() bool { return e.helpLine("deploy [app] - a test command") != "" })

	rep := e.say("Deploy web  v2")
	if rep.Error || rep.Text != "got Deploy,web,v2" {
		t.Fatalf("deploy reply %+v", rep)
	}
	h.mu.Lock()
	if id, _ := h.lastMD.Get(bot.MetaUserID); id != "U1" {
		t.Errorf("the service saw user id %q, want U1 (metadata %v)", id, h.lastMD)
	}
	h.mu.Unlock()
	if rep := e.say("deploy fail"); !rep.Error || rep.Text != "error: it failed on purpose" {
		t.Errorf("ExecResponse.error reply %+v", rep)
	}
	if md := e.table.Lookup("deploy").Metadata; md[command.MetaService] != "go.micro.bot.deploy" {
		t.Errorf("command metadata %v", md)
	}

	// One node goes: the command stays.
	stop(t, n1)
	if rep := e.say("deploy x"); rep.Error {
		t.Fatalf("with one node left: %+v", rep)
	}
	// The last goes: the command is gone.
	stop(t, n2)
	e.eventually("deploy gone", func() bool { return e.table.Lookup("deploy") == nil })
	if rep := e.say("deploy x"); !rep.Error || !strings.HasPrefix(rep.Text, `unknown command "deploy"`) {
		t.Errorf("after the service went: %+v", rep)
	}
	if e.helpLine("deploy") != "" {
		t.Error("deploy still in help")
	}
	// A node comes back: so does the command.
	e.serve("go.micro.bot.deploy", h)
	e.eventually("deploy back", func() bool { return e.helpLine("deploy [app]") != "" })
}

func TestToyReplacedProtectedRefused(t *testing.T) {
	e := newEnv(t, nil)
	echo := e.serve("go.micro.bot.echo", &cmdHandler{usage: "echo [service]"})
	e.serve("go.micro.bot.help", &cmdHandler{usage: "help [hijack]"})
	e.serve("go.micro.bot.list", &cmdHandler{usage: "list [hijack]"})
	e.serve("go.micro.botany", &cmdHandler{usage: "botany"})
	e.serve("go.micro.bot", &cmdHandler{usage: "bot"})
	e.serve("go.micro.bot.marker", &cmdHandler{usage: "marker"})
	e.eventually("echo service in help", func() bool { return e.helpLine("echo [service]") != "" })
	e.eventually("marker in help", func() bool { return e.helpLine("marker") != "" })

	if rep := e.say("echo hi"); rep.Text != "got echo,hi" {
		t.Errorf("echo with the service up: %+v", rep)
	}
	help := e.say("help").Text
	for _, bad := range []string{"echo [text]", "[hijack]", "botany", "\nbot"} {
		if strings.Contains(help, bad) {
			t.Errorf("help lists %q:\n%s", bad, help)
		}
	}
	if !strings.Contains(help, "help - Displays help") {
		t.Errorf("help lost the built-in help:\n%s", help)
	}
	if rep := e.say("list services"); rep.Error || !strings.Contains(rep.Text, "go.micro.bot.list") {
		t.Errorf("list services: %+v", rep)
	}
	stop(t, echo)
	e.eventually("built-in echo back", func() bool { return e.helpLine("echo [text] - Returns the [text]") != "" })
	if rep := e.say("echo hi"); rep.Text != "hi" {
		t.Errorf("built-in echo: %+v", rep)
	}
}

func TestHelpRetriedWithPlaceholderMeanwhile(t *testing.T) {
	e := newEnv(t, nil)
	h := &cmdHandler{usage: "later [x]"}
	h.helpFails.Store(3)
	e.serve("go.micro.bot.later", h)
	e.eventually("later listed", func() bool { return e.table.Lookup("later") != nil })
	if l := e.helpLine("later"); l != "" && !strings.Contains(l, "help not available yet") && !strings.HasPrefix(l, "later [x]") {
		t.Errorf("placeholder line %q", l)
	}
	e.eventually("help of later", func() bool { return e.helpLine("later [x] - a test command") != "" })
	if rep := e.say("later a"); rep.Text != "got later,a" {
		t.Errorf("later: %+v", rep)
	}
}

func TestExecNeverRetried(t *testing.T) {
	e := newEnv(t, nil)
	h := &cmdHandler{usage: "once", execErr: errors.New("exploded")}
	e.serve("go.micro.bot.once", h)
	e.serve("go.micro.bot.once", h)
	e.eventually("once listed", func() bool { return e.helpLine("once") != "" })
	rep := e.say("once")
	if !rep.Error || !strings.Contains(rep.Text, "exploded") {
		t.Errorf("reply %+v", rep)
	}
	if n := h.execs.Load(); n != 1 {
		t.Errorf("Exec ran %d times, want 1", n)
	}
}

// lossy is a registry whose watch loses every event, and whose first
// watches fail: only the resync and the watch restart can find services.
type lossy struct {
	registry.Registry
	watches   atomic.Int32
	failFirst int32
}

func (l *lossy) Watch(ctx context.Context, opts ...registry.WatchOption) (registry.Watcher, error) {
	if l.watches.Add(1) <= l.failFirst {
		return nil, errors.New("registry unreachable")
	}
	return deaf{ctx}, nil
}

type deaf struct{ ctx context.Context }

func (d deaf) Next() (*registry.Result, error) {
	<-d.ctx.Done()
	return nil, registry.ErrWatcherStopped
}
func (d deaf) Stop() {}

func TestResyncRepairsLostEvents(t *testing.T) {
	reg := &lossy{Registry: memory.New(), failFirst: 2}
	e := newEnv(t, reg, watch.WithResync(100*time.Millisecond))
	select {
	case <-e.w.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	s := e.serve("go.micro.bot.quiet", &cmdHandler{usage: "quiet"})
	e.eventually("quiet found by resync", func() bool { return e.helpLine("quiet - a test command") != "" })
	stop(t, s)
	e.eventually("quiet removed by resync", func() bool { return e.table.Lookup("quiet") == nil })
	if n := reg.watches.Load(); n < 3 {
		t.Errorf("watch tried %d times, want it restarted after failures", n)
	}
}

// late is a registry in which a service registers right after the first
// listing, and whose watches wait for that (a second at most): a watcher
// whose watch started after its first listing would miss the service.
type late struct {
	registry.Registry
	svc    *registry.Service
	listed chan struct{}
	once   sync.Once
}

func (l *late) ListServices(ctx context.Context) ([]*registry.Service, error) {
	list, err := l.Registry.ListServices(ctx)
	l.once.Do(func() {
		if err := l.Registry.Register(ctx, l.svc); err != nil {
			panic(err)
		}
		close(l.listed)
	})
	return list, err
}

func (l *late) Watch(ctx context.Context, opts ...registry.WatchOption) (registry.Watcher, error) {
	select {
	case <-l.listed:
	case <-time.After(time.Second):
	}
	return l.Registry.Watch(ctx, opts...)
}

// A service registered between the first listing and the start of the
// watch is found without waiting for a resync.
func TestRegisteredWhileStarting(t *testing.T) {
	reg := &late{Registry: memory.New(), listed: make(chan struct{}),
		svc: &registry.Service{Name: "go.micro.bot.late", Nodes: []*registry.Node{{ID: "late-1", Address: "127.0.0.1:1"}}}}
	e := newEnv(t, reg, watch.WithResync(time.Hour))
	e.eventually("late found", func() bool { return e.table.Lookup("late") != nil })
}

// Two services whose commands have the same name when case is ignored
// clash: the service that has the command keeps it, the other is ignored
// with a warning and takes the command over only when the first goes;
// found at once, the one already in folded form wins.
func TestCommandNameClash(t *testing.T) {
	reg := memory.New()
	e0 := &env{t: t, reg: reg}
	variant := e0.serve("go.micro.bot.Deploy", &cmdHandler{usage: "Deploy [variant]"})
	real := e0.serve("go.micro.bot.deploy", &cmdHandler{usage: "deploy [real]"})
	var logs testenv.Buffer
	e := newEnv(t, reg, watch.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	select {
	case <-e.w.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	service := func() string {
		if c := e.table.Lookup("deploy"); c != nil {
			return c.Metadata[command.MetaService]
		}
		return ""
	}
	if got := service(); got != "go.micro.bot.deploy" {
		t.Fatalf("found at once: deploy is %q", got)
	}
	if !strings.Contains(logs.String(), `service=go.micro.bot.Deploy command=Deploy taken_by=go.micro.bot.deploy`) {
		t.Errorf("no warning for the clash:\n%s", logs.String())
	}
	if rep := e.say("DEPLOY x"); rep.Text != "got DEPLOY,x" {
		t.Errorf("deploy: %+v", rep)
	}
	// A third variant comes while deploy is up: ignored.
	third := e.serve("GO.MICRO.BOT.DEPLOY", &cmdHandler{usage: "DEPLOY [third]"})
	e.eventually("the third variant refused", func() bool {
		return strings.Contains(logs.String(), "service=GO.MICRO.BOT.DEPLOY command=DEPLOY taken_by=go.micro.bot.deploy")
	})
	// A variant goes: deploy stays.
	stop(t, variant)
	e.serve("go.micro.bot.zzmarker", &cmdHandler{usage: "zzmarker"})
	e.eventually("zzmarker found", func() bool { return e.table.Lookup("zzmarker") != nil })
	if got := service(); got != "go.micro.bot.deploy" {
		t.Fatalf("after a variant went, deploy is %q", got)
	}
	// deploy goes: the variant left takes the command over.
	stop(t, real)
	e.eventually("the variant left has deploy", func() bool {
		return service() == "GO.MICRO.BOT.DEPLOY" && e.helpLine("DEPLOY [third]") != ""
	})
	if n := strings.Count(e.say("help").Text, "[third]"); n != 1 {
		t.Errorf("help lists the command %d times", n)
	}
	stop(t, third)
	e.eventually("deploy gone", func() bool { return e.table.Lookup("deploy") == nil })
}

// rogue is a command service whose help and answers hold control
// characters.
type rogue struct{}

func (rogue) Help(ctx context.Context, req *pb.HelpRequest, rsp *pb.HelpResponse) error {
	rsp.Usage, rsp.Description = "rogue [x]\ntime - Returns the server time", "clears \x1b[2J the screen"
	return nil
}

func (rogue) Exec(ctx context.Context, req *pb.ExecRequest, rsp *pb.ExecResponse) error {
	if len(req.Args) > 1 {
		rsp.Error = "failed \x1b[31mred\u202e"
		return nil
	}
	rsp.Result = []byte("line one\r\nline \x1b]0;title\x07two\x9b")
	return nil
}

// What a command service says reaches the reader escaped: its help stays
// one line, its answers and errors drive no terminal; a service whose
// command name holds a control character is ignored (issue 15, item 9).
func TestServiceTextEscaped(t *testing.T) {
	var logs testenv.Buffer
	e := newEnv(t, nil, watch.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	e.serve("go.micro.bot.rogue", rogue{})
	e.serve("go.micro.bot.bell\x07", rogue{})
	e.eventually("rogue's help", func() bool { return strings.Contains(e.helpLine("rogue"), "Returns the server time") })
	help := e.say("help").Text
	if l := e.helpLine("rogue"); l != `rogue [x]\ntime - Returns the server time - clears \x1b[2J the screen` {
		t.Errorf("help line %q", l)
	}
	if n := strings.Count(help, "\ntime"); n != 1 {
		t.Errorf("help has %d lines for time:\n%s", n, help)
	}
	if rep := e.say("rogue"); rep.Text != `line one`+"\n"+`line \x1b]0;title\atwo\x9b` { // \x9b: a byte that is not UTF-8
		t.Errorf("answer %q", rep.Text)
	}
	if rep := e.say("rogue x"); !rep.Error || rep.Text != `error: failed \x1b[31mred\u202e` {
		t.Errorf("error %+v", rep)
	}
	e.eventually("the bell service ignored", func() bool {
		return strings.Contains(logs.String(), "ignoring a command service") && strings.Contains(logs.String(), "printable")
	})
	if strings.Contains(e.say("help").Text, "bell") {
		t.Error("help lists the command whose name has a control character")
	}
}

func TestReadyWaitsForHelp(t *testing.T) {
	reg := memory.New()
	e0 := &env{t: t, reg: reg}
	e0.serve("go.micro.bot.early", &cmdHandler{usage: "early [x]"})
	e := newEnv(t, reg)
	select {
	case <-e.w.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	if l := e.helpLine("early"); l != "early [x] - a test command" {
		t.Errorf("at Ready, help line %q", l)
	}
}

func TestCommandName(t *testing.T) {
	w := watch.New(memory.New(), nil, command.NewTable(), watch.WithNamespace("go.micro.bot."))
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"go.micro.bot.deploy", "deploy", true},
		{"go.micro.bot.a.b", "a.b", true},
		{"go.micro.bot", "", false},
		{"go.micro.bot.", "", false},
		{"go.micro.botany", "", false},
		{"go.micro.srv.greeter", "", false},
		{"GO.MICRO.BOT.Deploy", "Deploy", true},
		{"go.micro.BOTANY", "", false},
	}
	for _, tt := range tests {
		got, ok := w.CommandName(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CommandName(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkServiceCommand1000 measures a line run by a command service:
// match among 1,000 other commands, dispatch, and the Command.Exec call over
// loopback to a real server.
func BenchmarkServiceCommand1000(b *testing.B) {
	reg := memory.New()
	c, err := client.New(client.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	table := command.NewTable()
	if err := command.RegisterBuiltins(table, reg, c); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if err := table.Put(&command.Command{Name: "cmd" + strconv.Itoa(i), Run: func(context.Context, *command.Request) (*input.Reply, error) {
			return command.Text("x"), nil
		}}); err != nil {
			b.Fatal(err)
		}
	}
	w := watch.New(reg, c, table, watch.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	s, err := server.New(server.WithName("go.micro.bot.bench"), server.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	if err := pb.RegisterCommandHandler(s, &cmdHandler{usage: "bench"}); err != nil {
		b.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Stop(context.Background())
	bt := bot.New(table, bot.WithLogger(slog.New(slog.DiscardHandler)))
	ev := &input.Event{Input: "bench", UserID: "U1", Addressed: true, Text: "bench a b"}
	deadline := time.Now().Add(20 * time.Second)
	for bt.Handle(ctx, ev).Text != "got bench,a,b" {
		if time.Now().After(deadline) {
			b.Fatal("bench command not discovered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rep := bt.Handle(ctx, ev); rep.Text != "got bench,a,b" {
			b.Fatal(rep.Text)
		}
	}
}
