package command_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/framework/transport"
	"github.com/microbot/microbot/input"
)

type HelloRequest struct {
	Name string `json:"name"`
}

type HelloResponse struct {
	Msg string `json:"msg"`
}

// Say is a greeter handler that counts its calls.
type Say struct{ calls atomic.Int32 }

func (s *Say) Hello(ctx context.Context, req *HelloRequest, rsp *HelloResponse) error {
	s.calls.Add(1)
	rsp.Msg = "Hello " + req.Name
	return nil
}

type fixture struct {
	reg   registry.Registry
	table *command.Table
	say   *Say
	srv   *server.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := memory.New()
	c, err := client.New(client.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	table := command.NewTable()
	if err := command.RegisterBuiltins(table, reg, c, command.WithHealthTimeout(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	say := &Say{}
	srv, err := server.New(server.WithName("go.micro.srv.greeter"), server.WithVersion("1.0.0"), server.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(say); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return &fixture{reg: reg, table: table, say: say, srv: srv}
}

func (f *fixture) run(text string) *input.Reply {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f.table.Execute(ctx, f.table.Match(text))
}

func TestQuery(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		in       string
		want     string // the whole reply, or a prefix when wantErr
		wantErr  bool
		noCall   bool
		contains string
	}{
		{in: `query go.micro.srv.greeter Say.Hello {"name": "John"}`, want: "{\n  \"msg\": \"Hello John\"\n}"},
		{in: `call go.micro.srv.greeter Say.Hello {"name":    "John   Smith"}`, want: "{\n  \"msg\": \"Hello John   Smith\"\n}"},
		{in: "QUERY   go.micro.srv.greeter\tSay.Hello   {\u201cname\u201d: \u201cJo\u201d}", want: "{\n  \"msg\": \"Hello Jo\"\n}"},
		{in: `query go.micro.srv.greeter Say.Hello '{"name": "Q"}'`, want: "{\n  \"msg\": \"Hello Q\"\n}"},
		{in: `query go.micro.srv.greeter Say.Hello`, want: "{\n  \"msg\": \"Hello \"\n}"},
		{in: `query go.micro.srv.greeter Say.Hello {"name": x}`, wantErr: true, noCall: true, contains: `character 10 ("x}")`},
		{in: `query go.micro.srv.greeter Say.Hello {"name": "John"`, wantErr: true, noCall: true, contains: "ends too early"},
		{in: `query go.micro.srv.greeter Say.Hello [1, 2]`, wantErr: true, noCall: true, contains: "must be a JSON object"},
		{in: `query go.micro.srv.greeter Say.Hello {"name": "a"} trailing`, wantErr: true, noCall: true, contains: `character 15 ("trailing")`},
		{in: `query go.micro.srv.greeter Say.Hello {"name": 12}`, wantErr: true, contains: "go.micro.srv.greeter"},
		{in: `query go.micro.srv.nope Say.Hello {}`, wantErr: true, noCall: true, contains: "go.micro.srv.nope"},
		{in: `query go.micro.srv.greeter Say.Nope {}`, wantErr: true, noCall: true, contains: "Say.Nope"},
		{in: `query go.micro.srv.greeter`, wantErr: true, noCall: true, contains: "usage: query [service] [method] [request]"},
	}
	for _, tt := range tests {
		before := f.say.calls.Load()
		rep := f.run(tt.in)
		if rep.Error != tt.wantErr {
			t.Errorf("%s: error = %v, want %v: %q", tt.in, rep.Error, tt.wantErr, rep.Text)
			continue
		}
		if !tt.wantErr && (rep.Text != tt.want || rep.Format != input.Code) {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.in, rep.Text, tt.want)
		}
		if tt.wantErr && (!strings.HasPrefix(rep.Text, "error: ") || !strings.Contains(rep.Text, tt.contains)) {
			t.Errorf("%s: reply %q, want an error containing %q", tt.in, rep.Text, tt.contains)
		}
		if tt.noCall && f.say.calls.Load() != before {
			t.Errorf("%s: the service was called", tt.in)
		}
	}
}

func TestGetAndListServices(t *testing.T) {
	f := newFixture(t)
	rep := f.run("get service go.micro.srv.greeter")
	node := f.srv.Options().ID
	for _, want := range []string{"service go.micro.srv.greeter\n", "version 1.0.0", "ID ", "ADDRESS", node, f.srv.Address(),
		"Endpoint: Say.Hello", "Request: {\n  name string\n}", "Response: {\n  msg string\n}"} {
		if !strings.Contains(rep.Text, want) {
			t.Errorf("get service lacks %q:\n%s", want, rep.Text)
		}
	}
	if rep.Error || rep.Format != input.Code {
		t.Errorf("get service: %+v", rep)
	}
	if rep := f.run("get service go.micro.srv.nope"); !rep.Error || rep.Text != `error: service "go.micro.srv.nope" not found` {
		t.Errorf("unknown service: %+v", rep)
	}
	if rep := f.run("get service"); !rep.Error || !strings.Contains(rep.Text, "usage: get service [name]") {
		t.Errorf("no name: %+v", rep)
	}
	if rep := f.run("list services"); rep.Error || rep.Text != "go.micro.srv.greeter" {
		t.Errorf("list services: %+v", rep)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t)
	rep := f.run("health go.micro.srv.greeter")
	if rep.Error || !strings.Contains(rep.Text, f.srv.Options().ID) || !strings.Contains(rep.Text, " ok") || !strings.Contains(rep.Text, "STATUS") {
		t.Fatalf("health:\n%+v", rep)
	}
	// A node that is registered but gone.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if err := f.reg.Register(context.Background(), &registry.Service{Name: "go.micro.srv.greeter", Version: "1.0.0",
		Nodes: []*registry.Node{{ID: "ghost", Address: dead}}}); err != nil {
		t.Fatal(err)
	}
	rep = f.run("health go.micro.srv.greeter")
	if !rep.Error || !strings.Contains(rep.Text, "ghost") || !strings.Contains(rep.Text, "error: 1 of 2 nodes unhealthy") {
		t.Errorf("health with a dead node:\n%s", rep.Text)
	}
	if rep := f.run("health go.micro.srv.nope"); !rep.Error || !strings.Contains(rep.Text, "not found") {
		t.Errorf("health of an unknown service: %+v", rep)
	}
}

func TestRegisterDeregister(t *testing.T) {
	f := newFixture(t)
	def := `{"name": "foo", "version": "bar", "nodes": [{"id": "foo-1", "address": "127.0.0.1", "port": 8080}]}`
	if rep := f.run("register service " + def); rep.Error || rep.Text != "registered foo (1 node)" {
		t.Fatalf("register: %+v", rep)
	}
	if rep := f.run("get service foo"); !strings.Contains(rep.Text, "foo-1") || !strings.Contains(rep.Text, "127.0.0.1:8080") {
		t.Errorf("get service foo:\n%s", rep.Text)
	}
	if rep := f.run("deregister service " + def); rep.Error || rep.Text != "deregistered foo (1 node)" {
		t.Fatalf("deregister: %+v", rep)
	}
	if rep := f.run("get service foo"); !rep.Error {
		t.Errorf("foo still there: %s", rep.Text)
	}
	bad := []struct{ def, want string }{
		{``, "usage: register service [definition]"},
		{`{"version": "1"}`, `"name" must be set`},
		{`{"name": "a b", "nodes": [{"id": "x", "address": "1.2.3.4:5"}]}`, `"name" must be set, without spaces`},
		{`{"name": "foo"}`, `"nodes" must list at least one node`},
		{`{"name": "foo", "nodes": [{"address": "127.0.0.1:1"}]}`, `node 1: "id" must be set`},
		{`{"name": "foo", "nodes": [{"id": "a"}]}`, `"address" must be set`},
		{`{"name": "foo", "nodes": [{"id": "a", "address": "nowhere"}]}`, `address "nowhere" is not host:port`},
		{`{"name": "foo", "nodes": [{"id": "a", "adress": "127.0.0.1:1"}]}`, `unknown field "adress"`},
		{`{"name": "foo", "nodes": [{"id": "a", "address": "127.0.0.1", "port": 99999}]}`, `port 99999 is not a port number`},
		{`{"name": "foo", "nodes": [{"id": "a", "address": "127.0.0.1:1"}, {"id": "a", "address": "127.0.0.1:2"}]}`, `node id "a" given twice`},
		{`{"name": "foo", "nodes": [}`, `invalid JSON at character 27 ("}")`},
	}
	for _, tt := range bad {
		rep := f.run("register service " + tt.def)
		if !rep.Error || !strings.Contains(rep.Text, tt.want) {
			t.Errorf("register %s: %q, want an error with %q", tt.def, rep.Text, tt.want)
		}
	}
	if svcs, _ := f.reg.ListServices(context.Background()); len(svcs) != 1 {
		t.Errorf("bad definitions changed the registry: %v", svcs)
	}
}

func TestHelpAndToys(t *testing.T) {
	f := newFixture(t)
	help := f.run("help").Text
	lines := strings.Split(help, "\n")
	want := []string{
		"deregister service [definition] - Deregisters a service",
		"echo [text] - Returns the [text]",
		"get service [name] - Returns a registered service",
		"health [service] - Returns health of a service",
		"hello - Returns a greeting",
		"help - Displays help for all known commands",
		"list services - Returns a list of registered services",
		"ping - Returns pong",
		"query [service] [method] [request] - Returns the response for a service query (alias: call)",
		"register service [definition] - Registers a service",
		"the three laws - Returns the three laws of robotics (alias: three laws)",
		"time - Returns the server time",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("help:\n%s\nwant:\n%s", help, strings.Join(want, "\n"))
	}
	if got := f.run("help get").Text; got != "get service [name] - Returns a registered service" {
		t.Errorf("help get = %q", got)
	}
	if rep := f.run("help nothing"); !rep.Error {
		t.Errorf("help nothing = %+v", rep)
	}
	replaceable := map[string]string{
		"ping": "pong", "PING": "pong", "hello": "hey what's up?", "echo  hi   there": "hi there",
		"echo \"hi   there\"": "hi   there", "echo": "error: echo what? (usage: echo [text])",
	}
	for in, want := range replaceable {
		if got := f.run(in).Text; got != want {
			t.Errorf("%q = %q, want %q", in, got, want)
		}
	}
	if got := f.run("time").Text; !strings.HasPrefix(got, "Server time is: ") {
		t.Errorf("time = %q", got)
	}
	if got := f.run("the three laws").Text; strings.Count(got, "\n") != 2 || !strings.HasPrefix(got, "1. A robot may not injure") {
		t.Errorf("the three laws = %q", got)
	}
}

// hostile answers Debug.Health, Evil.Fail and Evil.JSON with text meant to
// deceive a reader or drive their terminal.
func hostile(ctx context.Context, req *transport.Request) ([]byte, error) {
	switch req.Endpoint {
	case "Debug.Health":
		return []byte(`{"status": "ok\nfake-node   127.0.0.1:1   ok"}`), nil
	case "Evil.Fail":
		return nil, rpcerr.BadRequest("x", "no\x1b[2J\x1b[31mHACKED\nerror: fake second line")
	}
	return []byte("{\"text\": \"csi \u009b2J and \u202eevil\"}"), nil
}

type handlerFunc func(ctx context.Context, req *transport.Request) ([]byte, error)

func (f handlerFunc) ServeRPC(ctx context.Context, req *transport.Request) ([]byte, error) {
	return f(ctx, req)
}

// checkPrintable fails if text holds a control character other than a
// newline, a bidi control, or a line that starts with one of fakes.
func checkPrintable(t *testing.T, what, text string, fakes ...string) {
	t.Helper()
	for _, r := range text {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) || r == '\u202e' || r == '\u2028' {
			t.Errorf("%s shows %U:\n%q", what, r, text)
			break
		}
	}
	for _, l := range strings.Split(text, "\n") {
		for _, f := range fakes {
			if strings.HasPrefix(strings.TrimSpace(l), f) {
				t.Errorf("%s has a line made by the data: %q\n%q", what, l, text)
			}
		}
	}
}

// Control characters from the registry or from services reach the reader
// escaped: a node id cannot add a row, a version cannot clear the screen
// (issue 15, item 9).
func TestRegistryAndServiceTextEscaped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	evil := &registry.Service{
		Name:     "go.micro.srv.evil\x1b]0;title\x07",
		Version:  "\x1b[2J\x1b[31mHACKED",
		Metadata: map[string]string{"k\ninjected": "v\u202e"},
		Nodes: []*registry.Node{{ID: "n1\nINJECTED   127.0.0.1:2   ok", Address: "127.0.0.1:1\t\x7f",
			Metadata: map[string]string{"a": "b\r\nINJECTED=1"}}},
		Endpoints: []*registry.Endpoint{{Name: "Evil.Do\nINJECTED", Metadata: map[string]string{"x": "\x9b2J"},
			Request: &registry.Value{Values: []*registry.Value{{Name: "f\nINJECTED", Type: "string\x1b[0m"}}}}},
	}
	if err := f.reg.Register(ctx, evil); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"list services", "get service " + evil.Name, "health " + evil.Name} {
		rep := f.run(line)
		checkPrintable(t, strings.Fields(line)[0], rep.Text, "INJECTED", "fake")
		if line != "list services" && !strings.Contains(rep.Text, `n1\nINJECTED`) {
			t.Errorf("%s: the node id is not shown escaped:\n%s", line, rep.Text)
		}
	}
	if rep := f.run("get service " + evil.Name); !strings.Contains(rep.Text, `version \x1b[2J\x1b[31mHACKED`) {
		t.Errorf("get service: the version is not shown escaped:\n%s", rep.Text)
	}

	// Text from a service: its health status, its error, its JSON answer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := transport.NewServer(handlerFunc(hostile))
	go ts.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { ts.Close() })
	if err := f.reg.Register(ctx, &registry.Service{Name: "go.micro.srv.hostile",
		Nodes: []*registry.Node{{ID: "h1", Address: ln.Addr().String()}}}); err != nil {
		t.Fatal(err)
	}
	checkPrintable(t, "health", f.run("health go.micro.srv.hostile").Text, "fake")
	for _, line := range []string{"query go.micro.srv.hostile Evil.Fail {}", "query go.micro.srv.hostile Evil.JSON {}"} {
		rep := f.run(line)
		checkPrintable(t, line, rep.Text, "error: fake")
	}
	if rep := f.run("query go.micro.srv.hostile Evil.Fail {}"); !strings.Contains(rep.Text, `no\x1b[2J\x1b[31mHACKED\nerror: fake second line`) {
		t.Errorf("the service's error is not shown escaped:\n%s", rep.Text)
	}
}

// registerTopic registers a subscriber of topic as the http broker does
// (go-micro v1's wire: the service topic:<topic>).
func registerTopic(t *testing.T, reg registry.Registry, topic string) {
	t.Helper()
	err := reg.Register(context.Background(), &registry.Service{Name: broker.TopicServicePrefix + topic, Version: broker.BroadcastVersion,
		Nodes: []*registry.Node{{ID: "broker-" + topic, Address: "127.0.0.1:1", Metadata: map[string]string{"secure": "false"}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestListServicesLeavesTopicsOut: the http broker's subscriber
// registrations are not services: list services leaves them out and says
// how many; get service still shows one.
func TestListServicesLeavesTopicsOut(t *testing.T) {
	f := newFixture(t)
	registerTopic(t, f.reg, "alerts")
	want := "go.micro.srv.greeter\n\n(1 http broker subscription not listed: get service topic:<topic>)"
	if rep := f.run("list services"); rep.Error || rep.Format != input.Code || rep.Text != want {
		t.Errorf("list services:\n%s\nwant:\n%s", rep.Text, want)
	}
	registerTopic(t, f.reg, "go.micro.bot.progress.0123")
	want = "go.micro.srv.greeter\n\n(2 http broker subscriptions not listed: get service topic:<topic>)"
	if rep := f.run("list services"); rep.Error || rep.Text != want {
		t.Errorf("list services:\n%s\nwant:\n%s", rep.Text, want)
	}
	rep := f.run("get service topic:alerts")
	for _, w := range []string{"service topic:alerts\n", "version " + broker.BroadcastVersion, "broker-alerts", "127.0.0.1:1"} {
		if rep.Error || !strings.Contains(rep.Text, w) {
			t.Errorf("get service topic:alerts lacks %q:\n%s", w, rep.Text)
		}
	}

	// The bots' own topics are neither listed nor counted.
	own := &fixture{reg: memory.New(), table: command.NewTable()}
	if err := command.RegisterBuiltins(own.table, own.reg, nil, command.WithOwnTopics("go.micro.bot.progress.")); err != nil {
		t.Fatal(err)
	}
	registerTopic(t, own.reg, "go.micro.bot.progress.0123")
	if rep := own.run("list services"); rep.Error || rep.Text != "no services registered" {
		t.Errorf("list services with only the bot's own topic: %q, want %q", rep.Text, "no services registered")
	}
	registerTopic(t, own.reg, "alerts")
	want = "no services registered (1 http broker subscription not listed: get service topic:<topic>)"
	if rep := own.run("list services"); rep.Error || rep.Text != want {
		t.Errorf("list services: %q, want %q", rep.Text, want)
	}

	// Nothing but subscriptions.
	empty := &fixture{reg: memory.New(), table: command.NewTable()}
	if err := command.RegisterBuiltins(empty.table, empty.reg, nil); err != nil {
		t.Fatal(err)
	}
	registerTopic(t, empty.reg, "alerts")
	want = "no services registered (1 http broker subscription not listed: get service topic:<topic>)"
	if rep := empty.run("list services"); rep.Error || rep.Text != want {
		t.Errorf("list services: %q, want %q", rep.Text, want)
	}
}
