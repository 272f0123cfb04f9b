package ops_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
)

// scrape returns the /metrics page of m, as served.
func scrape(t *testing.T, m *ops.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	ops.NewServer(ops.WithMetrics(m), ops.WithLogger(slog.New(slog.DiscardHandler))).Handler().
		ServeHTTP(rec, httptest.NewRequest("GET", ops.PathMetrics, nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// Say is a greeter handler.
type Say struct{}

type HelloRequest struct {
	Name string `json:"name"`
}

type HelloResponse struct {
	Msg string `json:"msg"`
}

func (Say) Hello(ctx context.Context, req *HelloRequest, rsp *HelloResponse) error {
	rsp.Msg = "Hello " + req.Name
	return nil
}

// world is a memory registry with the greeter in it, a client wrapped by
// the metrics, and a bot with the built-ins and the metrics middleware.
type world struct {
	m     *ops.Metrics
	reg   registry.Registry
	c     *client.Client
	table *command.Table
	bot   *bot.Bot
}

func newWorld(t *testing.T, mopts ...ops.MetricsOption) *world {
	t.Helper()
	reg := memory.New()
	srv, err := server.New(server.WithName("go.micro.srv.greeter"), server.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(Say{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	table := command.NewTable()
	m := ops.NewMetrics(append([]ops.MetricsOption{ops.WithTable(table), ops.WithMetricsLogger(slog.New(slog.DiscardHandler))}, mopts...)...)
	c, err := client.New(client.WithRegistry(reg), client.WithCallWrappers(m.WrapCall()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := command.RegisterBuiltins(table, reg, c); err != nil {
		t.Fatal(err)
	}
	err = table.Register(&command.Command{Name: "boom", Run: func(context.Context, *command.Request) (*input.Reply, error) {
		return nil, errors.New("it broke")
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := bot.New(table, bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithMiddleware(m.Middleware()), bot.WithCommandTimeout(10*time.Second))
	return &world{m: m, reg: reg, c: c, table: table, bot: b}
}

func (w *world) say(text string) *input.Reply {
	return w.bot.Handle(context.Background(), &input.Event{Input: "test", UserID: "U1", Room: "C1", Addressed: true, Text: text})
}

func TestCommandMetrics(t *testing.T) {
	w := newWorld(t)
	lines := []struct {
		text    string
		wantErr bool
	}{
		{"ping", false},
		{"PING", false},
		{`query go.micro.srv.greeter Say.Hello {"name": "John"}`, false},
		{"boom", true},
		{"truncate table users", true},    // unknown command
		{"secretword --password=x", true}, // unknown command
	}
	for _, l := range lines {
		if rep := w.say(l.text); rep == nil || rep.Error != l.wantErr {
			t.Fatalf("%q: reply %+v, want error=%v", l.text, rep, l.wantErr)
		}
	}
	page := scrape(t, w.m)
	tests := []struct {
		series string
		want   float64
	}{
		{`microbot_commands_total{command="ping",outcome="ok"}`, 2},
		{`microbot_commands_total{command="query",outcome="ok"}`, 1},
		{`microbot_commands_total{command="boom",outcome="error"}`, 1},
		{`microbot_commands_total{command="unknown",outcome="error"}`, 2},
		{`microbot_command_duration_seconds_count{command="ping"}`, 2},
		{`microbot_command_duration_seconds_count{command="unknown"}`, 2},
		{`microbot_rpc_calls_total{service="go.micro.srv.greeter"}`, 1},
	}
	for _, tt := range tests {
		if got := testenv.Metric(page, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
	// What people type never becomes a label.
	for _, typed := range []string{"truncate", "secretword", "password"} {
		if strings.Contains(page, typed) {
			t.Errorf("the metrics show %q, typed by a user", typed)
		}
	}
	// The Go runtime's and the process's collectors are there.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(page, "\n"+name+" ") {
			t.Errorf("no %s", name)
		}
	}
}

func TestRPCMetrics(t *testing.T) {
	w := newWorld(t, ops.WithMaxLabels(2))
	ctx := context.Background()
	call := func(service, endpoint string) error {
		var rsp HelloResponse
		return w.c.Call(ctx, service, endpoint, &HelloRequest{Name: "x"}, &rsp, client.WithRetries(0))
	}
	if err := call("go.micro.srv.greeter", "Say.Hello"); err != nil {
		t.Fatal(err)
	}
	if err := call("go.micro.srv.greeter", "Say.Nope"); err == nil {
		t.Fatal("unknown endpoint: no error")
	}
	// A service nobody registered: counted as "unknown", its name is no label.
	if err := call("go.micro.srv.typed-by-someone", "X.Y"); err == nil {
		t.Fatal("unknown service: no error")
	}
	// Past the cap of 2 distinct services, a known one is "other". Its
	// node is dead: the error is the client's 503.
	dead := &registry.Service{Name: "go.micro.srv.dead", Nodes: []*registry.Node{{ID: "d1", Address: "127.0.0.1:1"}}}
	for _, name := range []string{"go.micro.srv.second", "go.micro.srv.dead"} {
		s := *dead
		s.Name = name
		if err := w.reg.Register(ctx, &s); err != nil {
			t.Fatal(err)
		}
		if err := call(name, "X.Y"); err == nil {
			t.Fatalf("%s: no error", name)
		}
	}
	page := scrape(t, w.m)
	tests := []struct {
		series string
		want   float64
	}{
		{`microbot_rpc_calls_total{service="go.micro.srv.greeter"}`, 2},
		{`microbot_rpc_errors_total{code="404",service="go.micro.srv.greeter"}`, 1},
		{`microbot_rpc_calls_total{service="unknown"}`, 1},
		{`microbot_rpc_errors_total{code="404",service="unknown"}`, 1},
		{`microbot_rpc_calls_total{service="go.micro.srv.second"}`, 1},
		{`microbot_rpc_errors_total{code="503",service="go.micro.srv.second"}`, 1},
		{`microbot_rpc_calls_total{service="other"}`, 1},
		{`microbot_rpc_duration_seconds_count{service="go.micro.srv.greeter"}`, 2},
	}
	for _, tt := range tests {
		if got := testenv.Metric(page, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
	for _, name := range []string{"typed-by-someone", "go.micro.srv.dead"} {
		if strings.Contains(page, name) {
			t.Errorf("the metrics show %q", name)
		}
	}
}

// silent is an input that cannot tell whether it is connected.
type silent struct{ name string }

func (s *silent) String() string                                 { return s.name }
func (s *silent) Stream(ctx context.Context) (input.Conn, error) { return nil, errors.New("not used") }

// status is an input whose connection state the test sets.
type status struct {
	silent
	up atomic.Bool
}

func newStatus(name string) *status { return &status{silent: silent{name: name}} }

func (s *status) Connected() bool { return s.up.Load() }

func TestInputMetrics(t *testing.T) {
	m := ops.NewMetrics()
	slack := newStatus("slack")
	plain := &silent{name: "irc"} // no StatusReporter: the hook's word counts
	m.WatchInputs(slack, plain)
	hook := m.InputHook()

	page := scrape(t, m)
	for _, s := range []string{`microbot_input_connected{input="slack"}`, `microbot_input_connected{input="irc"}`,
		`microbot_input_reconnects_total{input="slack"}`, `microbot_input_failures_total{input="irc"}`} {
		if got := testenv.Metric(page, s); got != 0 {
			t.Errorf("at start %s = %v, want 0", s, got)
		}
	}

	slack.up.Store(true)
	hook("slack", true, nil)
	hook("irc", false, errors.New("refused"))
	hook("irc", true, nil)
	slack.up.Store(false)
	hook("slack", false, errors.New("socket dropped"))
	page = scrape(t, m)
	tests := []struct {
		series string
		want   float64
	}{
		{`microbot_input_connected{input="slack"}`, 0}, // as the input says
		{`microbot_input_connected{input="irc"}`, 1},   // as the hook said
		{`microbot_input_connects_total{input="slack"}`, 1},
		{`microbot_input_reconnects_total{input="slack"}`, 0},
		{`microbot_input_failures_total{input="slack"}`, 1},
		{`microbot_input_failures_total{input="irc"}`, 1},
	}
	for _, tt := range tests {
		if got := testenv.Metric(page, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}

	slack.up.Store(true)
	hook("slack", true, nil) // reconnected
	page = scrape(t, m)
	if got := testenv.Metric(page, `microbot_input_reconnects_total{input="slack"}`); got != 1 {
		t.Errorf("reconnects after a reconnection = %v, want 1", got)
	}
	if got := testenv.Metric(page, `microbot_input_connected{input="slack"}`); got != 1 {
		t.Errorf("connected after a reconnection = %v, want 1", got)
	}
}

func TestWatchAndServiceCommandMetrics(t *testing.T) {
	table := command.NewTable()
	m := ops.NewMetrics(ops.WithTable(table))
	hook := m.WatchHook()
	for _, a := range []string{registry.Create, registry.Create, registry.Update, registry.Delete, "explode"} {
		hook(&registry.Result{Action: a, Service: &registry.Service{Name: "x"}})
	}
	for _, name := range []string{"deploy", "rollback"} {
		err := table.Put(&command.Command{Name: name, Metadata: map[string]string{command.MetaService: "go.micro.bot." + name},
			Run: func(context.Context, *command.Request) (*input.Reply, error) { return nil, nil }})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := table.Register(&command.Command{Name: "builtin", Run: func(context.Context, *command.Request) (*input.Reply, error) { return nil, nil }}); err != nil {
		t.Fatal(err)
	}
	page := scrape(t, m)
	tests := []struct {
		series string
		want   float64
	}{
		{`microbot_registry_watch_events_total{action="create"}`, 2},
		{`microbot_registry_watch_events_total{action="update"}`, 1},
		{`microbot_registry_watch_events_total{action="delete"}`, 1},
		{`microbot_registry_watch_events_total{action="other"}`, 1},
		{`microbot_service_commands`, 2},
	}
	for _, tt := range tests {
		if got := testenv.Metric(page, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
	table.Remove("deploy")
	if got := testenv.Metric(scrape(t, m), "microbot_service_commands"); got != 1 {
		t.Errorf("after a service command went: microbot_service_commands = %v, want 1", got)
	}
}

func TestMiddlewareCountsPanicsAndSilence(t *testing.T) {
	table := command.NewTable()
	if err := table.Register(&command.Command{Name: "ping", Run: func(context.Context, *command.Request) (*input.Reply, error) {
		return command.Text("pong"), nil
	}}); err != nil {
		t.Fatal(err)
	}
	m := ops.NewMetrics()
	inner := func(next bot.Handler) bot.Handler {
		return func(ctx context.Context, req *command.Request) *input.Reply {
			switch req.Text {
			case "ping quiet":
				return nil
			case "ping panic":
				panic("a middleware panicked")
			}
			return next(ctx, req)
		}
	}
	b := bot.New(table, bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithMiddleware(m.Middleware(), inner))
	for _, text := range []string{"ping", "ping quiet", "ping panic"} {
		rep := b.Handle(context.Background(), &input.Event{Addressed: true, Text: text})
		if text == "ping panic" && (rep == nil || !rep.Error) {
			t.Errorf("after a panic: reply %+v, want the bot's error reply", rep)
		}
	}
	page := scrape(t, m)
	for _, outcome := range []string{"ok", "none", "panic"} {
		if got := testenv.Metric(page, `microbot_commands_total{command="ping",outcome="`+outcome+`"}`); got != 1 {
			t.Errorf("outcome %s: %v, want 1", outcome, got)
		}
	}
}

// exclusive is an input one instance at a time serves, whose state the
// test sets.
type exclusive struct {
	status
	active atomic.Bool
}

func (e *exclusive) Active() bool { return e.active.Load() }

func TestHAMetrics(t *testing.T) {
	m := ops.NewMetrics()
	xmpp := &exclusive{status: status{silent: silent{name: "xmpp"}}}
	slack := newStatus("slack")
	m.WatchInputs(xmpp, slack)
	page := scrape(t, m)
	if got := testenv.Metric(page, `microbot_ha_active{input="xmpp"}`); got != 0 {
		t.Errorf("active at start = %v", got)
	}
	if got := testenv.Metric(page, `microbot_ha_takeovers_total{input="xmpp"}`); got != 0 {
		t.Errorf("takeovers at start = %v", got)
	}
	for _, s := range []string{`microbot_ha_active{input="slack"}`, `microbot_ha_takeovers_total{input="slack"}`} {
		if got := testenv.Metric(page, s); got != -1 {
			t.Errorf("%s = %v: Slack has no HA role", s, got)
		}
	}
	hook := m.ActiveHook()
	xmpp.active.Store(true)
	hook("xmpp", true)
	xmpp.active.Store(false)
	hook("xmpp", false)
	xmpp.active.Store(true)
	hook("xmpp", true)
	page = scrape(t, m)
	if got := testenv.Metric(page, `microbot_ha_active{input="xmpp"}`); got != 1 {
		t.Errorf("active = %v, want 1", got)
	}
	if got := testenv.Metric(page, `microbot_ha_takeovers_total{input="xmpp"}`); got != 2 {
		t.Errorf("takeovers = %v, want 2", got)
	}
}

// notifierStats is a fixed NotifierStats.
type notifierStats struct{}

func (notifierStats) BrokerStats() broker.Stats     { return broker.Stats{Dropped: 7} }
func (notifierStats) Backlog() (queued, folded int) { return 3, 40 }

func TestNotifyMetrics(t *testing.T) {
	m := ops.NewMetrics(ops.WithMaxLabels(2))
	page := scrape(t, m)
	if got := testenv.Metric(page, `microbot_notify_backlog{state="folded"}`); got != 0 {
		t.Errorf("backlog before a notifier: %v", got)
	}
	hook := m.NotifyHook()
	for _, h := range [][2]string{{"a", "received"}, {"a", "posted"}, {"a", "folded"}, {"a", "folded"}, {"b", "dropped"}, {"c", "received"}} {
		hook(h[0], h[1])
	}
	m.WatchNotifier(notifierStats{})
	page = scrape(t, m)
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`microbot_notify_events_total{topic="a"}`, 1},
		{`microbot_notify_events_total{topic="other"}`, 1}, // past the cap of 2 topics
		{`microbot_notify_deliveries_total{outcome="posted",topic="a"}`, 1},
		{`microbot_notify_deliveries_total{outcome="folded",topic="a"}`, 2},
		{`microbot_notify_deliveries_total{outcome="dropped",topic="b"}`, 1},
		{`microbot_notify_broker_dropped_total`, 7},
		{`microbot_notify_backlog{state="queued"}`, 3},
		{`microbot_notify_backlog{state="folded"}`, 40},
	} {
		if got := testenv.Metric(page, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
}

func TestProgressMetrics(t *testing.T) {
	m := ops.NewMetrics()
	hook := m.ProgressHook()
	if got := testenv.Metric(scrape(t, m), `microbot_progress_lines_total{outcome="shown"}`); got != 0 {
		t.Errorf("shown before any line: %v", got)
	}
	for _, o := range []string{watch.ProgressShown, watch.ProgressShown, watch.ProgressDropped, watch.ProgressUndecodable, "strange"} {
		hook(o)
	}
	page := scrape(t, m)
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`microbot_progress_lines_total{outcome="shown"}`, 2},
		{`microbot_progress_lines_total{outcome="dropped"}`, 1},
		{`microbot_progress_lines_total{outcome="undecodable"}`, 1},
		{`microbot_progress_lines_total{outcome="other"}`, 1},
	} {
		if got := testenv.Metric(page, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
}
