package access

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/audit"
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

// auditLog is an audit log sink.
type auditLog struct{ testenv.Buffer }

// records parses the audit lines written so far.
func (l *auditLog) records(t *testing.T) []audit.Record {
	t.Helper()
	return testenv.JSONLines[audit.Record](t, []byte(l.String()))
}

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a memory registry, command services and a plain service served
// by real servers, a watcher, and a bot with the guard.
type world struct {
	t     *testing.T
	reg   registry.Registry
	table *command.Table
	guard *Guard
	bot   *bot.Bot
	audit *auditLog
	clock *clock
	calls chan call      // what the services received
	wlog  testenv.Buffer // the watcher's log
}

// call is one call a service received.
type call struct {
	service string
	args    []string
	md      metadata.Metadata
}

// whoHandler serves Command (a command service) and records the calls.
type whoHandler struct {
	name  string
	calls chan<- call
}

func (h *whoHandler) Help(ctx context.Context, req *pb.HelpRequest, rsp *pb.HelpResponse) error {
	rsp.Usage, rsp.Description = h.name+" [args]", "test command "+h.name
	return nil
}

func (h *whoHandler) Exec(ctx context.Context, req *pb.ExecRequest, rsp *pb.ExecResponse) error {
	md, _ := metadata.FromContext(ctx)
	h.calls <- call{h.name, req.Args, md}
	rsp.Result = []byte(h.name + " ran")
	return nil
}

// Who is a plain service's handler: Who.Am answers with the metadata.
type Who struct{ calls chan<- call }

// WhoReq is Who.Am's request.
type WhoReq struct{}

// WhoRsp is Who.Am's response.
type WhoRsp struct {
	MD map[string]string `json:"md"`
}

// Am records the call.
func (w *Who) Am(ctx context.Context, req *WhoReq, rsp *WhoRsp) error {
	md, _ := metadata.FromContext(ctx)
	w.calls <- call{"who", nil, md}
	rsp.MD = md
	return nil
}

const guardPolicy = `
admins: [shell:root]
groups:
  ops: [shell:alice, slack:UOPS, slack:UOPS2]
rules:
  - commands: wipe
    groups: ops
    action: allow
    confirm: two-person
  - commands: wipe
    action: deny
  - commands: query
    services: go.micro.srv.who
    users: shell:mallory
    action: deny
`

func newWorld(t *testing.T, policy string, opts ...Option) *world {
	t.Helper()
	w := &world{t: t, reg: memory.New(), audit: &auditLog{}, clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		calls: make(chan call, 100)}
	p, err := Parse("guard.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	w.guard = New(p, append([]Option{WithLogger(slog.New(slog.DiscardHandler)), WithAudit(audit.New(w.audit)), withClock(w.clock.now)}, opts...)...)
	c, err := client.New(client.WithRegistry(w.reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.table = command.NewTable(command.WithVisibility(w.guard.Visibility()))
	if err := command.RegisterBuiltins(w.table, w.reg, c); err != nil {
		t.Fatal(err)
	}
	if err := w.guard.Install(w.table, "go.micro.bot"); err != nil {
		t.Fatal(err)
	}
	w.serveCommand("deploy", map[string]string{MetaGroup: "ops"})
	w.serveCommand("drop", map[string]string{MetaConfirm: "true"})
	w.serveCommand("wipe", nil)
	w.serveCommand("whoami", nil)
	w.serveCommand("confirm", nil) // may never shadow the guard's confirm
	s, err := server.New(server.WithName("go.micro.srv.who"), server.WithRegistry(w.reg), server.WithRegisterTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(&Who{calls: w.calls}); err != nil {
		t.Fatal(err)
	}
	w.start(s)
	wt := watch.New(w.reg, c, w.table, watch.WithLogger(slog.New(slog.NewTextHandler(&w.wlog, nil))),
		watch.WithHelpBackoff(20*time.Millisecond, 200*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); wt.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-wt.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the watcher did not find the command services")
	}
	for _, n := range []string{"deploy", "drop", "wipe", "whoami"} {
		if w.table.Lookup(n) == nil {
			t.Fatalf("no command %s", n)
		}
	}
	if w.table.Lookup("confirm") != w.guard.Command() {
		t.Fatal("the confirm command service took over confirm")
	}
	w.bot = bot.New(w.table, bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithCommandTimeout(10*time.Second), bot.WithMiddleware(w.guard.Middleware()))
	return w
}

func (w *world) serveCommand(name string, md map[string]string) *server.Server {
	s, err := server.New(server.WithName("go.micro.bot."+name), server.WithRegistry(w.reg), server.WithRegisterTTL(time.Minute), server.WithMetadata(md))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := pb.RegisterCommandHandler(s, &whoHandler{name: name, calls: w.calls}); err != nil {
		w.t.Fatal(err)
	}
	w.start(s)
	return s
}

func (w *world) start(s *server.Server) {
	if err := s.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
}

// as is a user somewhere.
type as struct {
	input, id, name, room string
	direct                bool
}

var (
	alice   = as{"shell", "alice", "Alice", "console", true}
	root    = as{"shell", "root", "Root", "console", true}
	dev     = as{"shell", "dev", "Dev", "console", true}
	mallory = as{"shell", "mallory", "Mallory", "console", true}
	ops     = as{"slack", "UOPS", "Ops", "COPS", false}
	ops2    = as{"slack", "UOPS2", "Ops Two", "COPS", false}
	opsElse = as{"slack", "UOPS2", "Ops Two", "CELSE", false}
	devRoom = as{"slack", "UDEV", "Dev", "COPS", false}
)

func (w *world) say(who as, text string) *input.Reply {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep := w.bot.Handle(ctx, &input.Event{Input: who.input, UserID: who.id, UserName: who.name, Room: who.room,
		Direct: who.direct, Addressed: true, Text: text})
	if rep == nil {
		w.t.Fatalf("%s: no reply", text)
	}
	return rep
}

// lastCall returns the call a service received last (waiting for one).
func (w *world) lastCall() call {
	w.t.Helper()
	select {
	case c := <-w.calls:
		return c
	case <-time.After(20 * time.Second):
		w.t.Fatal("the service got no call")
		return call{}
	}
}

func (w *world) noCall() {
	w.t.Helper()
	select {
	case c := <-w.calls:
		w.t.Fatalf("a service was called: %+v", c)
	default:
	}
}

var codeRE = regexp.MustCompile(`"confirm ([a-z0-9]{6})"`)

// code returns the confirmation code in a reply.
func code(t *testing.T, rep *input.Reply) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(rep.Text)
	if m == nil || rep.Error {
		t.Fatalf("no confirmation code in %q", rep.Text)
	}
	return m[1]
}

func TestGuardAllowDeny(t *testing.T) {
	w := newWorld(t, guardPolicy)
	if got := w.say(dev, "ping").Text; got != "pong" {
		t.Errorf("ping: %q", got)
	}
	rep := w.say(dev, `deregister service {"name": "go.micro.srv.who", "nodes": [{"id": "x"}]}`)
	if !rep.Error || rep.Text != "you are not allowed to run deregister service on go.micro.srv.who here (admins only)" {
		t.Errorf("deregister by a non-admin: %+v", rep)
	}

	// A command service the caller may not run looks like no command at all.
	unknown := w.say(dev, "nosuchcommand now").Text
	if got := w.say(dev, "deploy now").Text; got != strings.Replace(unknown, "nosuchcommand", "deploy", 1) {
		t.Errorf("deploy by a non-member: %q (unknown: %q)", got, unknown)
	}
	w.noCall()
	if got := w.say(alice, "deploy now").Text; got != "deploy ran" {
		t.Errorf("deploy by ops: %q", got)
	}
	c := w.lastCall()
	if c.service != "deploy" || get(c.md, bot.MetaUserID) != "alice" || get(c.md, bot.MetaInput) != "shell" || get(c.md, bot.MetaRoom) != "console" || get(c.md, bot.MetaUserName) != "Alice" || get(c.md, MetaConfirmedBy) != "" {
		t.Errorf("the service got %+v", c)
	}
	// Querying the command service directly does not get around it.
	rep = w.say(dev, `query go.micro.bot.deploy Command.Exec {"args": ["deploy", "now"]}`)
	if !rep.Error || !strings.Contains(rep.Text, "you are not allowed to run query on go.micro.bot.deploy here") {
		t.Errorf("query of the command service: %+v", rep)
	}
	rep = w.say(dev, `query GO.MICRO.BOT.nosuch Command.Exec {}`)
	if !rep.Error || !strings.Contains(rep.Text, "not allowed") {
		t.Errorf("query of the namespace, no such command: %+v", rep)
	}
	w.noCall()
	// A queried service gets the caller's identity.
	rep = w.say(devRoom, `query go.micro.srv.who Who.Am {}`)
	c = w.lastCall()
	if rep.Error || get(c.md, bot.MetaUserID) != "UDEV" || get(c.md, bot.MetaInput) != "slack" || get(c.md, bot.MetaRoom) != "COPS" {
		t.Errorf("query: %+v; the service got %+v", rep, c)
	}
	rep = w.say(mallory, `call go.micro.srv.who Who.Am {}`)
	if !rep.Error || rep.Text != "you are not allowed to run query on go.micro.srv.who here" {
		t.Errorf("query denied by rule: %+v", rep)
	}
	w.noCall()

	recs := w.audit.records(t)
	want := []struct{ user, command, decision, outcome, target string }{
		{"dev", "ping", audit.Allowed, audit.OK, ""},
		{"dev", "deregister service", audit.Denied, "", "go.micro.srv.who"},
		{"dev", "deploy", audit.Denied, "", "go.micro.bot.deploy"},
		{"alice", "deploy", audit.Allowed, audit.OK, "go.micro.bot.deploy"},
		{"dev", "query", audit.Denied, "", "go.micro.bot.deploy"},
		{"dev", "query", audit.Denied, "", "GO.MICRO.BOT.nosuch"},
		{"UDEV", "query", audit.Allowed, audit.OK, "go.micro.srv.who"},
		{"mallory", "query", audit.Denied, "", "go.micro.srv.who"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d audit records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, wr := range want {
		r := recs[i]
		if r.UserID != wr.user || r.Command != wr.command || r.Decision != wr.decision || r.Outcome != wr.outcome || r.Target != wr.target {
			t.Errorf("record %d: %+v, want %+v", i, r, wr)
		}
		if !r.Time.Equal(w.clock.now()) || r.LatencyMS < 0 || r.Rule == "" {
			t.Errorf("record %d: time %s latency %v rule %q", i, r.Time, r.LatencyMS, r.Rule)
		}
	}
	if recs[1].Args != `{"name":"go.micro.srv.who","nodes":[{"id":"x"}]}` && recs[1].Args != `{"name": "go.micro.srv.who", "nodes": [{"id": "x"}]}` {
		t.Errorf("args: %q", recs[1].Args)
	}
	if recs[2].Rule != "service metadata bot.group=ops" || recs[6].Room != "COPS" || recs[6].Input != "slack" || recs[6].UserName != "Dev" {
		t.Errorf("records: %+v / %+v", recs[2], recs[6])
	}
}

func TestGuardConfirmation(t *testing.T) { forEachStore(t, testGuardConfirmation) }

func testGuardConfirmation(t *testing.T, opts ...Option) {
	w := newWorld(t, guardPolicy, opts...)
	// The command service asks for a confirmation in its metadata.
	rep := w.say(dev, "drop table users")
	c1 := code(t, rep)
	if rep.Text != `drop needs confirmation: type "confirm `+c1+`" here within 2m` {
		t.Errorf("reply: %q", rep.Text)
	}
	w.noCall()
	// Someone else, or the same user elsewhere, cannot confirm it.
	if rep := w.say(mallory, "confirm "+c1); !rep.Error || rep.Text != "error: only the person who asked for drop can confirm it" {
		t.Errorf("confirmed by another user: %+v", rep)
	}
	if rep := w.say(as{"slack", "dev", "Dev", "console", true}, "confirm "+c1); !rep.Error || !strings.Contains(rep.Text, "no command is waiting for confirmation with code") {
		t.Errorf("confirmed from another input: %+v", rep)
	}
	if rep := w.say(as{"shell", "dev", "Dev", "elsewhere", true}, "confirm "+c1); !rep.Error || !strings.Contains(rep.Text, "no command is waiting") {
		t.Errorf("confirmed from another room: %+v", rep)
	}
	if rep := w.say(dev, "confirm nope42"); !rep.Error || rep.Text != `error: no command is waiting for confirmation with code "nope42" here` {
		t.Errorf("a wrong code: %+v", rep)
	}
	w.noCall()
	// The requester confirms (any case): it runs once, with Micro-Confirmed-By.
	if rep := w.say(dev, "confirm "+strings.ToUpper(c1)); rep.Text != "drop ran" {
		t.Errorf("confirm: %+v", rep)
	}
	c := w.lastCall()
	if strings.Join(c.args, " ") != "drop table users" || get(c.md, bot.MetaUserID) != "dev" || get(c.md, MetaConfirmedBy) != "shell:dev" {
		t.Errorf("the service got %+v", c)
	}
	if rep := w.say(dev, "confirm "+c1); !rep.Error || !strings.Contains(rep.Text, "no command is waiting") {
		t.Errorf("a code used twice: %+v", rep)
	}
	w.noCall()

	// Expiry.
	c2 := code(t, w.say(dev, "drop it"))
	w.clock.add(2*time.Minute + time.Second)
	if rep := w.say(dev, "confirm "+c2); !rep.Error || rep.Text != "error: the confirmation of drop expired (codes last 2m): run the command again" {
		t.Errorf("late confirm: %+v", rep)
	}
	if rep := w.say(dev, "confirm "+c2); !strings.Contains(rep.Text, "no command is waiting") {
		t.Errorf("expired code again: %+v", rep)
	}
	w.noCall()
	// Without a code.
	if rep := w.say(dev, "confirm"); !rep.Error || !strings.Contains(rep.Text, "confirm what?") {
		t.Errorf("confirm alone: %+v", rep)
	}

	// Register and deregister need a confirmation by default, from an admin.
	def := `{"name": "go.micro.srv.extra", "nodes": [{"id": "x1", "address": "127.0.0.1:9"}]}`
	c3 := code(t, w.say(root, "register service "+def))
	if _, err := w.reg.GetService(context.Background(), "go.micro.srv.extra"); err == nil {
		t.Error("registered before the confirmation")
	}
	if rep := w.say(root, "confirm "+c3); rep.Error || !strings.Contains(rep.Text, "registered go.micro.srv.extra") {
		t.Errorf("register confirmed: %+v", rep)
	}
	if _, err := w.reg.GetService(context.Background(), "go.micro.srv.extra"); err != nil {
		t.Errorf("not registered after the confirmation: %v", err)
	}

	recs := w.audit.records(t)
	type rw struct{ user, command, decision, outcome, code, by, confirmedBy string }
	want := []rw{
		{"dev", "drop", audit.ConfirmationRequired, "", c1, "", ""},
		{"mallory", "drop", audit.Denied, "", c1, "shell:dev", ""},
		{"dev", "confirm", audit.Denied, "", "", "", ""},
		{"dev", "confirm", audit.Denied, "", "", "", ""},
		{"dev", "confirm", audit.Denied, "", "", "", ""},
		{"dev", "drop", audit.Confirmed, audit.OK, c1, "shell:dev", "shell:dev"},
		{"dev", "confirm", audit.Denied, "", "", "", ""},
		{"dev", "drop", audit.ConfirmationRequired, "", c2, "", ""},
		{"dev", "drop", audit.Expired, "", c2, "shell:dev", ""},
		{"dev", "confirm", audit.Denied, "", "", "", ""},
		{"dev", "confirm", audit.Denied, "", "", "", ""},
		{"root", "register service", audit.ConfirmationRequired, "", c3, "", ""},
		{"root", "register service", audit.Confirmed, audit.OK, c3, "shell:root", "shell:root"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d audit records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, wr := range want {
		r := recs[i]
		got := rw{r.UserID, r.Command, r.Decision, r.Outcome, r.Code, r.RequestedBy, r.ConfirmedBy}
		if got != wr {
			t.Errorf("record %d: %+v, want %+v", i, got, wr)
		}
	}
	if recs[5].Args != "table users" || recs[2].Args != c1 || recs[8].Reason == "" {
		t.Errorf("records: %+v %+v %+v", recs[5], recs[2], recs[8])
	}
}

func TestGuardTwoPerson(t *testing.T) { forEachStore(t, testGuardTwoPerson) }

func testGuardTwoPerson(t *testing.T, opts ...Option) {
	w := newWorld(t, guardPolicy, opts...)
	c1 := code(t, w.say(ops, "wipe disk"))
	if rep := w.say(ops, "confirm "+c1); !rep.Error || rep.Text != "error: you asked for wipe: someone else allowed to run it must confirm it (two-person rule)" {
		t.Errorf("self-confirmation: %+v", rep)
	}
	// Someone who may not run wipe cannot be the second person.
	if rep := w.say(devRoom, "confirm "+c1); !rep.Error || rep.Text != "error: you are not allowed to run wipe here, so you cannot confirm it" {
		t.Errorf("confirmed by a non-member: %+v", rep)
	}
	w.noCall()
	// The refusal did not use the code up: the rightful second person can.
	if rep := w.say(opsElse, "confirm "+c1); !strings.Contains(rep.Text, "no command is waiting") {
		t.Errorf("confirmed from another channel: %+v", rep)
	}
	if rep := w.say(ops2, "confirm "+c1); rep.Text != "wipe ran" {
		t.Errorf("second person: %+v", rep)
	}
	c := w.lastCall()
	if get(c.md, bot.MetaUserID) != "UOPS" || get(c.md, MetaConfirmedBy) != "slack:UOPS2" || get(c.md, bot.MetaRoom) != "COPS" {
		t.Errorf("the service got %+v", c)
	}
	recs := w.audit.records(t)
	last := recs[len(recs)-1]
	if last.Decision != audit.Confirmed || last.UserID != "UOPS2" || last.RequestedBy != "slack:UOPS" || last.ConfirmedBy != "slack:UOPS2" || last.Outcome != audit.OK {
		t.Errorf("last record: %+v", last)
	}
	if r := recs[2]; r.Decision != audit.Denied || r.Reason != "the confirmer may not run it here" {
		t.Errorf("refused confirmer's record: %+v", r)
	}
}

func TestGuardHelp(t *testing.T) {
	w := newWorld(t, guardPolicy)
	lines := func(who as) []string {
		rep := w.say(who, "help")
		var names []string
		for _, l := range strings.Split(rep.Text, "\n") {
			names = append(names, strings.Fields(l)[0])
		}
		sort.Strings(names)
		return slices.Compact(names)
	}
	has := func(names []string, n string) bool { return slices.Contains(names, n) }
	d, a, r := lines(dev), lines(alice), lines(root)
	for _, tt := range []struct {
		who   string
		names []string
		cmd   string
		want  bool
	}{
		{"dev", d, "deploy", false}, {"dev", d, "wipe", false}, {"dev", d, "register", false}, {"dev", d, "deregister", false},
		{"dev", d, "drop", true}, {"dev", d, "whoami", true}, {"dev", d, "confirm", true}, {"dev", d, "query", true}, {"dev", d, "help", true},
		{"alice", a, "deploy", true}, {"alice", a, "wipe", true}, {"alice", a, "register", false},
		{"root", r, "register", true}, {"root", r, "deregister", true}, {"root", r, "deploy", false},
	} {
		if has(tt.names, tt.cmd) != tt.want {
			t.Errorf("help for %s lists %s: %v, want %v (%v)", tt.who, tt.cmd, !tt.want, tt.want, tt.names)
		}
	}
	// "did you mean" does not suggest what the caller cannot see.
	if rep := w.say(dev, "deregister"); strings.Contains(rep.Text, "deregister service") {
		t.Errorf("suggested to dev: %q", rep.Text)
	}
	if rep := w.say(root, "deregister"); !strings.Contains(rep.Text, `did you mean "deregister service [definition]"`) {
		t.Errorf("suggested to root: %q", rep.Text)
	}
}

func TestGuardReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:\n  - commands: ping\n    action: deny\n")
	p, err := Load(path, "shell:root")
	if err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	al, err := audit.Open(auditPath, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := New(p, WithLogger(slog.New(slog.DiscardHandler)), WithAudit(al))
	t.Cleanup(func() { g.Close() })
	table := command.NewTable(command.WithVisibility(g.Visibility()))
	if err := command.RegisterBuiltins(table, memory.New(), nil); err != nil {
		t.Fatal(err)
	}
	if err := g.Install(table, "go.micro.bot"); err != nil {
		t.Fatal(err)
	}
	b := bot.New(table, bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithMiddleware(g.Middleware()))
	ping := func() string {
		return b.Handle(context.Background(), &input.Event{Input: "shell", UserID: "dev", Room: "console", Addressed: true, Text: "ping"}).Text
	}
	if got := ping(); got != "you are not allowed to run ping here" {
		t.Fatalf("ping: %q", got)
	}
	write("rules:\n  - commands: ping\n    action: allow\n")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := ping(); got != "pong" {
		t.Errorf("ping after reload: %q", got)
	}
	if !g.Policy().admins["shell:root"] {
		t.Error("reload lost the --admins")
	}
	// A broken file keeps the policy in effect.
	write("rules:\n  - commands: ping\n    action: deny\n  - bogus: 1\n")
	if err := g.Reload(); err == nil || !strings.Contains(err.Error(), path+":4: unknown field \"bogus\"") {
		t.Errorf("reload of a broken file: %v", err)
	}
	if got := ping(); got != "pong" {
		t.Errorf("ping after a failed reload: %q", got)
	}
	// So does an empty one (a file cut short while being written).
	write("")
	if err := g.Reload(); err == nil || !strings.Contains(err.Error(), path+": the policy file is empty") {
		t.Errorf("reload of an empty file: %v", err)
	}
	if got := ping(); got != "pong" {
		t.Errorf("ping after the reload of an empty file: %q", got)
	}
	write("rules:\n  - commands: ping\n    action: deny\n  - bogus: 1\n")
	// The audit log was reopened: a rotated file gets the next records.
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err == nil {
		t.Error("the broken file loads")
	}
	ping()
	for name, n := range map[string]int{auditPath + ".1": 4, auditPath: 1} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(data), "\n"); got != n {
			t.Errorf("%s: %d lines, want %d:\n%s", name, got, n, data)
		}
		if st, _ := os.Stat(name); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %s", name, st.Mode())
		}
	}
}

// Many callers at once: every record is one whole JSON line, and codes are
// all different.
func TestGuardConcurrent(t *testing.T) {
	w := newWorld(t, guardPolicy)
	const n = 40
	codes := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			who := as{"shell", fmt.Sprintf("u%d", i), "", "console", true}
			rep := w.bot.Handle(context.Background(), &input.Event{Input: who.input, UserID: who.id, Room: who.room, Direct: true, Addressed: true, Text: "drop x"})
			if m := codeRE.FindStringSubmatch(rep.Text); m != nil {
				codes <- m[1]
			}
			w.bot.Handle(context.Background(), &input.Event{Input: who.input, UserID: who.id, Room: who.room, Direct: true, Addressed: true, Text: "ping"})
		})
	}
	wg.Wait()
	close(codes)
	seen := map[string]bool{}
	for c := range codes {
		seen[c] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct codes for %d requests", len(seen), n)
	}
	if recs := w.audit.records(t); len(recs) != 2*n {
		t.Errorf("%d records, want %d", len(recs), 2*n)
	}
}

func TestConfirmationsBounded(t *testing.T) {
	cs := newConfirmations()
	now := time.Now()
	u := Caller{Input: "shell", UserID: "u", Room: "r"}
	var first string
	for i := range maxPendingPerUser + 5 {
		c, err := cs.add(context.Background(), &pending{req: &command.Request{}, requester: u, created: now.Add(time.Duration(i)), expires: now.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = c
		}
		if len(c) != CodeLen || strings.Trim(c, codeAlphabet) != "" {
			t.Errorf("code %q", c)
		}
	}
	if n := cs.len(); n != maxPendingPerUser {
		t.Errorf("%d pending for one user, want %d", n, maxPendingPerUser)
	}
	if _, res, _ := cs.take(context.Background(), first, u, now, func(*pending) (ConfirmMode, bool) { return ConfirmSelf, true }); res != confirmUnknown {
		t.Errorf("the oldest code was kept: %v", res)
	}
	// Expired codes are forgotten some time after.
	cs.sweep(now.Add(time.Minute + expiredKept + time.Second))
	if n := cs.len(); n != 0 {
		t.Errorf("%d left after the sweep", n)
	}
}

// get returns a metadata value, "" if absent.
func get(md metadata.Metadata, key string) string {
	v, _ := md.Get(key)
	return v
}

// A case variant of a restricted command service's name (issue 15, item
// 2) takes neither its command nor its restrictions: go.micro.bot.DEPLOY,
// with no bot.group, is refused with a warning; a non-member can run
// deploy neither directly nor by query; stopping the variant leaves deploy.
func TestGuardCaseVariantService(t *testing.T) {
	w := newWorld(t, guardPolicy)
	real := w.table.Lookup("deploy")
	rogue := w.serveCommand("DEPLOY", nil)
	testenv.Eventually(t, 20*time.Second, "the watcher handles go.micro.bot.DEPLOY", func() bool {
		return strings.Contains(w.wlog.String(), "another service has a command of the same name") ||
			w.table.Lookup("deploy") != real
	})
	if !strings.Contains(w.wlog.String(), "taken_by=go.micro.bot.deploy") {
		t.Errorf("no warning naming the service that has the command: %s", w.wlog.String())
	}
	if got := w.table.Lookup("deploy"); got != real {
		t.Fatalf("deploy is now %+v", got.Metadata)
	}
	unknown := w.say(dev, "nosuchcommand now").Text
	for _, line := range []string{"deploy now", "DEPLOY now"} {
		if got := w.say(dev, line).Text; got != strings.Replace(unknown, "nosuchcommand", strings.Fields(line)[0], 1) {
			t.Errorf("%s by a non-member: %q", line, got)
		}
	}
	// A variant of the name is no command's service: nobody may query it
	// (a member of ops may query the real one).
	for _, svc := range []string{"go.micro.bot.deploy", "go.micro.bot.DEPLOY", "GO.MICRO.BOT.DEPLOY", "go.micro.bot.Deploy"} {
		for _, who := range []as{dev, alice} {
			if who == alice && svc == "go.micro.bot.deploy" {
				continue
			}
			rep := w.say(who, `query `+svc+` Command.Exec {"args": ["deploy", "now"]}`)
			if !rep.Error || !strings.Contains(rep.Text, "not allowed") {
				t.Errorf("query %s by %s: %+v", svc, who.id, rep)
			}
		}
	}
	w.noCall()
	if got := w.say(alice, "deploy now").Text; got != "deploy ran" {
		t.Errorf("deploy by ops: %q", got)
	}
	if c := w.lastCall(); c.service != "deploy" {
		t.Errorf("deploy ran %s", c.service)
	}
	n := 0
	for _, l := range strings.Split(w.say(alice, "help").Text, "\n") {
		if strings.HasPrefix(strings.ToLower(l), "deploy") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("help lists deploy %d times", n)
	}

	// The variant goes: deploy stays (a service registered after it is
	// found after its removal is handled).
	stop := func(s *server.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stop(rogue)
	w.serveCommand("zzmarker", nil)
	testenv.Eventually(t, 20*time.Second, "the watcher finds zzmarker", func() bool { return w.table.Lookup("zzmarker") != nil })
	if got := w.table.Lookup("deploy"); got != real {
		t.Fatalf("after go.micro.bot.DEPLOY stopped, deploy is %v", got)
	}
	if got := w.say(alice, "deploy now").Text; got != "deploy ran" {
		t.Errorf("deploy by ops after the variant stopped: %q", got)
	}
	w.lastCall()

	// A confirmation is for the service that asked for it: if a variant
	// has taken the command over meanwhile, nothing runs.
	purge := w.serveCommand("purge", map[string]string{MetaConfirm: "true"})
	testenv.Eventually(t, 20*time.Second, "the watcher finds purge", func() bool { return w.table.Lookup("purge") != nil })
	c := code(t, w.say(dev, "purge all"))
	w.serveCommand("PURGE", nil)
	testenv.Eventually(t, 20*time.Second, "the watcher refuses go.micro.bot.PURGE", func() bool {
		return strings.Contains(w.wlog.String(), "service=go.micro.bot.PURGE command=PURGE taken_by=go.micro.bot.purge")
	})
	stop(purge)
	testenv.Eventually(t, 20*time.Second, "go.micro.bot.PURGE has purge", func() bool {
		cmd := w.table.Lookup("purge")
		return cmd != nil && cmd.Metadata[command.MetaService] == "go.micro.bot.PURGE"
	})
	if rep := w.say(dev, "confirm "+c); !rep.Error || rep.Text != "error: purge is no longer available" {
		t.Errorf("confirm after the service changed: %+v", rep)
	}
	w.noCall()
}
