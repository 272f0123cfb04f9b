package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/broker/mqtt/mosquittotest"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/internal/gomicrotest"
)

// These tests put microbot and real go-micro programs (tools/gomicro: go-micro
// v1.8.0, v0.10.0, and v1.16.0 on go-plugins v1.5.1's Consul registry, built
// from the module proxy) in one real Consul agent,
// both ways: microbot lists, describes, queries and checks the health of
// go-micro services and runs go-micro command services as commands; go-micro's
// own client finds and calls microbot's services. And events: a go-micro
// v1.16.0 program on go-plugins v1.5.1's MQTT broker (tools/gomicro/plugins)
// publishes to a room that watches its topic, through a real mosquitto.

// gmVersion is a version of go-micro whose programs (internal/gomicrotest)
// the RPC tests run: a greeter, a command service and a client.
type gmVersion struct {
	name                     string // "v1.8.0"
	greeter, command, client string // gomicrotest's programs
	old                      bool   // also go-micro v0.10.0's greeter and client
	// httpBroker: the version's http broker speaks microbot's (v1.8.0's
	// wire), so a command service's progress reaches the bot. go-micro
	// v1.16.0's does not: it registers a subscription as the service named
	// by the topic itself (not "topic:"+topic) and publishes only to nodes
	// with the metadata broker=http and topic=TOPIC (README, go-micro).
	httpBroker bool
}

// gmVersions are the go-micro v1 releases tested: v1.8.0 with go-micro's
// own Consul registry, v1.16.0 with go-plugins v1.5.1's (tools/gomicro/plugins).
var gmVersions = []gmVersion{
	{"v1.8.0", gomicrotest.Greeter, gomicrotest.Command, gomicrotest.Client, true, true},
	{"v1.16.0", gomicrotest.GreeterV116, gomicrotest.CommandV116, gomicrotest.ClientV116, false, false},
}

// gmHelp is the help line of the go-micro command service gm.
func gmHelp(version string) string {
	return "gm [text] - Returns the [text] (a go-micro " + version + " command service)"
}

// TestGoMicroServicesInTheBot: go-micro's services and command services, as
// they were written in 2019 (v1.8.0, and v1.16.0 on go-plugins' Consul
// registry; and a greeter of 2018), work from the bot as microbot's own do.
func TestGoMicroServicesInTheBot(t *testing.T) {
	build(t)
	for _, v := range gmVersions {
		t.Run(v.name, func(t *testing.T) { testGoMicroServicesInTheBot(t, v) })
	}
}

func testGoMicroServicesInTheBot(t *testing.T, v gmVersion) {
	agent := consultest.Start(t)
	greeter := gomicrotest.Start(t, v.greeter, "go.micro.srv.greeter", agent.Addr())
	gm := gomicrotest.Start(t, v.command, "go.micro.bot.gm", agent.Addr(), "--server_name=go.micro.bot.gm")
	greeters := []string{"go.micro.srv.greeter"}
	if v.old {
		gomicrotest.Start(t, gomicrotest.GreeterV0, "go.micro.srv.old", agent.Addr(), "--server_name=go.micro.srv.old")
		greeters = append(greeters, "go.micro.srv.old")
	}
	w := &world{t: t, reg: agent.Addr()}
	c := w.bot("--registry", "consul")
	help := gmHelp(v.name)

	c.until("help", contains(help))
	c.until("list services", contains(append([]string{"go.micro.bot.gm"}, greeters...)...))
	expect(t, "get service", c.ask("get service go.micro.srv.greeter"), contains(
		"service go.micro.srv.greeter", "version latest", greeter.NodeID(), greeter.Address(),
		"Endpoint: Say.Hello", "Request: {\n  name string\n}", "Response: {\n  msg string\n}", "protocol=mucp"))

	// Queries in JSON; an error answered is shown, and ran once.
	if got := c.ask(`query go.micro.srv.greeter Say.Hello {"name": "John"}`); got != "{\n  \"msg\": \"Hello John\"\n}" {
		t.Errorf("query: %q", got)
	}
	expect(t, "query of an error", c.ask(`query go.micro.srv.greeter Say.Fail {"code": 409, "detail": "nope"}`), contains("error: ", "nope"))
	expect(t, "query of a 500", c.ask(`query go.micro.srv.greeter Say.Fail {"detail": "boom"}`), contains("error: ", "boom"))
	if got := c.ask(`query go.micro.srv.greeter Say.Count {"endpoint": "Say.Fail"}`); got != "{\n  \"count\": 2\n}" {
		t.Errorf("Say.Fail ran %s times, want 2 (each call once)", got)
	}
	expect(t, "health", c.ask("health go.micro.srv.greeter"), contains("NODE", "STATUS", greeter.NodeID(), " ok"))

	// The command service: help, exec, errors of both kinds, and the next
	// command works after go-micro closed the connection on an error.
	for _, tt := range []struct{ line, want string }{
		{"gm hi there", "gm hi there"},
		{"gm fail now", "failed: now"},
		{"gm hi again", "gm hi again"},
		{"gm error here", "error: error: here"},
		{"gm count", "5"}, // every Exec ran once
	} {
		if got := c.ask(tt.line); !strings.Contains(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.line, got, tt.want)
		}
	}

	// Progress from a go-micro command service: published with go-micro's
	// own client and http broker, with the Exec context, whose metadata
	// (the run id with it) go-micro sends as the message's headers.
	if v.httpBroker {
		waitLog(t, c.p, progressFollowed)
		c.awaitProgress("gm await", "saw ")
	}

	// go-micro v0.10.0: no protocol metadata, the old framing.
	if v.old {
		testGoMicroV0InTheBot(t, c)
	}

	// microbot's client in protobuf: go-micro v1's wire to the greeter,
	// the proto-rpc framing to go-micro v0.10.0's.
	reg, err := consul.New(consul.WithAddrs(agent.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.WithRegistry(reg), client.WithDefaultCallOptions(client.WithContentType("application/protobuf")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, service := range greeters {
		var rsp greeting
		if err := cl.Call(context.Background(), service, "Say.Hello", &greeting{"John"}, &rsp); err != nil || rsp.text != "Hello John" {
			t.Errorf("%s Say.Hello in protobuf: %q, %v", service, rsp.text, err)
		}
	}

	// The command service stops (go-micro deregisters it): the command goes.
	if err := gm.Stop(); err != nil {
		t.Fatal(err)
	}
	c.until("gm hi", contains(`unknown command "gm"`))
	expect(t, "help without gm", c.ask("help"), lacks(help))
	c.close()
}

// testGoMicroV0InTheBot queries go-micro v0.10.0's greeter go.micro.srv.old.
func testGoMicroV0InTheBot(t *testing.T, c *console) {
	t.Helper()
	if got := c.ask(`query go.micro.srv.old Say.Hello {"name": "John"}`); got != "{\n  \"msg\": \"Hello John\"\n}" {
		t.Errorf("query of go-micro v0.10.0: %q", got)
	}
	expect(t, "query of a go-micro v0.10.0 error", c.ask(`query go.micro.srv.old Say.Fail {"name": "nope"}`), contains("error: ", "nope"))
	expect(t, "health of go-micro v0.10.0", c.ask("health go.micro.srv.old"), contains("go.micro.srv.old-", " ok"))
}

// TestGoMicroNotificationIntoChat: a go-micro v1.8.0 service publishes a
// go.micro.bot.Notification with go-micro's client (protobuf, its default)
// and the header Micro-Message-Type in its metadata, on go-micro's nats
// broker, and the console room that watches the topic shows it as a
// notification; a JSON event of go-micro's raw broker is shown as JSON.
func TestGoMicroNotificationIntoChat(t *testing.T) {
	build(t)
	agent := consultest.Start(t)
	nats := natstest.Start(t)
	w := &world{t: t, reg: agent.Addr()}
	c := w.bot("--registry", "consul", "--broker", "nats", "--broker_address", nats.Addr, "--admins", "shell:tester")
	expect(t, "watch", c.ask("watch deploys"), contains("watching deploys: its events will be posted here"))

	pub := gomicrotest.StartPublisher(t, agent.Addr(), "--broker=nats", "--broker_address="+nats.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Protobuf does not name its type: the header does, in go-micro's
	// metadata, as docs/notify.md says.
	if err := pub.Publish(ctx, gomicrotest.Message{Topic: "deploys", Notification: json.RawMessage(`{"title": "deploy of web v2 started",
		"severity": "WARNING", "fields": [{"name": "service", "value": "web"}], "source": "ci", "thread_key": "web-v2"}`),
		Metadata: map[string]string{"Micro-Message-Type": "go.micro.bot.Notification"}}); err != nil {
		t.Fatal(err)
	}
	post := c.post("the notification")
	if len(post) != 3 || post[0] != "[WARNING] deploy of web v2 started" || post[1] != "service: web" || !strings.HasPrefix(post[2], "— ci, ") {
		t.Errorf("go-micro's notification printed as %q", post)
	}
	if err := pub.Publish(ctx, gomicrotest.Message{Topic: "deploys", Raw: true,
		Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"status": "green"}`)}); err != nil {
		t.Fatal(err)
	}
	if post := c.post("the JSON"); strings.Join(post, "\n") != "{\n  \"status\": \"green\"\n}\n— deploys" {
		t.Errorf("go-micro's JSON printed as %q", post)
	}
	c.close()
}

// greeting is the greeters' Request {string name = 1} and Response
// {string msg = 1}, on the protobuf wire.
type greeting struct{ text string }

func (g *greeting) MarshalProto() ([]byte, error) {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendString(b, g.text), nil
}

func (g *greeting) UnmarshalProto(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeString(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			g.text, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

// Say is a microbot service the go-micro clients call; it counts the runs
// of each endpoint.
type Say struct{ hello, fail, plain atomic.Int32 }

type sayRequest struct {
	Name string `json:"name"`
}

type sayResponse struct {
	Msg string `json:"msg"`
}

func (s *Say) Hello(ctx context.Context, req *sayRequest, rsp *sayResponse) error {
	s.hello.Add(1)
	rsp.Msg = "Hello " + req.Name
	return nil
}

// Fail answers a 409.
func (s *Say) Fail(ctx context.Context, req *sayRequest, rsp *sayResponse) error {
	s.fail.Add(1)
	return rpcerr.New("go.micro.srv.counter", "no "+req.Name, 409)
}

// Plain fails with a plain Go error.
func (s *Say) Plain(ctx context.Context, req *sayRequest, rsp *sayResponse) error {
	s.plain.Add(1)
	return errors.New("plain failure")
}

// TestGoMicroClientCallsMicrobot: go-micro's own clients (v1.8.0, as the
// original micro bot called, v1.16.0 on go-plugins' Consul registry, and
// v0.10.0 with the old framing) find microbot's services in Consul and call
// them, in protobuf and JSON; an error answered runs once.
func TestGoMicroClientCallsMicrobot(t *testing.T) {
	build(t)
	for _, v := range gmVersions {
		t.Run(v.name, func(t *testing.T) { testGoMicroClientCallsMicrobot(t, v) })
	}
}

func testGoMicroClientCallsMicrobot(t *testing.T, v gmVersion) {
	agent := consultest.Start(t)
	reg := []string{"--registry", "consul", "--registry_address", agent.Addr()}
	start(t, "greeter", bins.greeter, reg...)
	start(t, "echo", bins.echo, reg...)
	say := &Say{}
	svc, err := framework.NewService(framework.WithName("go.micro.srv.counter"),
		framework.WithRegistryName("consul", agent.Addr()), framework.WithAddress("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Server().Handle(say); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop(context.Background()) }) //nolint:errcheck
	waitRegistered(t, svc.Registry(), "go.micro.srv.greeter", "go.micro.bot.echo", "go.micro.srv.counter")

	client := gomicrotest.StartClientOf(t, v.client, agent.Addr())
	expectCalls(t, "go-micro "+v.name, client, []call{
		{"go.micro.srv.greeter", "Say.Hello", map[string]string{"name": "John"}, "application/json", `{"msg":"Hello John"}`},
		{"go.micro.srv.greeter", "Debug.Health", nil, "", `{"status":"ok"}`},
		{"go.micro.bot.echo", "Command.Help", nil, "", `{"usage":"echo","description":"This is an example bot command as a micro service which echos the message"}`},
		{"go.micro.bot.echo", "Command.Exec", map[string][]string{"args": {"echo", "hi"}}, "", `{"result":"ZWNobyBoaQ=="}`},
		{"go.micro.bot.echo", "Command.Exec", map[string][]string{"args": {"echo", "json"}}, "application/json", `{"result":"ZWNobyBqc29u"}`},
	})
	// Errors: each call ran once, and the client's next call works.
	for _, tt := range []struct {
		endpoint string
		code     int32
		detail   string
		ran      *atomic.Int32
	}{
		{"Say.Fail", 409, "no John", &say.fail},
		{"Say.Plain", 0, "plain failure", &say.plain}, // as go-micro's servers send a plain error
	} {
		_, err := client.Call("go.micro.srv.counter", tt.endpoint, map[string]string{"name": "John"}, "application/json")
		e, ok := gomicrotest.AsError(err)
		if !ok || e.Code != tt.code || e.Detail != tt.detail {
			t.Errorf("%s: %v, want code %d %q", tt.endpoint, err, tt.code, tt.detail)
		}
		if n := tt.ran.Load(); n != 1 {
			t.Errorf("%s ran %d times, want once", tt.endpoint, n)
		}
		if got, err := client.Call("go.micro.srv.counter", "Say.Hello", map[string]string{"name": "again"}, "application/json"); err != nil || !sameJSON(got, `{"msg":"Hello again"}`) {
			t.Errorf("after %s: %s, %v", tt.endpoint, got, err)
		}
	}
	_, err = client.Call("go.micro.srv.greeter", "Say.Nope", nil, "application/json")
	if e, ok := gomicrotest.AsError(err); !ok || e.Code != 404 || !strings.Contains(e.Detail, "unknown endpoint Say.Nope") {
		t.Errorf("unknown endpoint: %v", err)
	}

	// go-micro's registry sees microbot's node as one of its own.
	raw, err := client.GetService("go.micro.srv.greeter")
	var svcs []*registry.Service
	if err != nil || json.Unmarshal(raw, &svcs) != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 ||
		svcs[0].Version != "1.0.0" || svcs[0].Nodes[0].Metadata["protocol"] != "mucp" || len(svcs[0].Endpoints) != 2 {
		t.Errorf("go-micro's view of the greeter: %s, %v", raw, err)
	}

	// go-micro v0.10.0's client speaks the old framing only.
	if !v.old {
		return
	}
	old := gomicrotest.StartClientV0(t, agent.Addr())
	expectCalls(t, "go-micro v0.10.0", old, []call{
		{"go.micro.srv.greeter", "Say.Hello", map[string]string{"name": "John"}, "application/json", `{"msg":"Hello John"}`},
		{"go.micro.bot.echo", "Command.Help", nil, "", `{"usage":"echo","description":"This is an example bot command as a micro service which echos the message"}`},
		{"go.micro.bot.echo", "Command.Exec", map[string][]string{"args": {"echo", "old"}}, "application/protobuf", `{"result":"ZWNobyBvbGQ="}`},
	})
	_, err = old.Call("go.micro.srv.counter", "Say.Fail", map[string]string{"name": "old"}, "application/json")
	if e, ok := gomicrotest.AsError(err); !ok || e.Code != 409 || e.Detail != "no old" || say.fail.Load() != 2 {
		t.Errorf("v0.10.0 Say.Fail: %v (ran %d times in all, want 2)", err, say.fail.Load())
	}
}

// call is a call a go-micro client makes and the JSON it should answer.
type call struct {
	service, endpoint string
	req               any
	ct                string // "": the client's default
	want              string
}

// expectCalls makes the calls through client.
func expectCalls(t *testing.T, who string, client *gomicrotest.ClientProcess, calls []call) {
	t.Helper()
	for _, c := range calls {
		got, err := client.Call(c.service, c.endpoint, c.req, c.ct)
		if err != nil || !sameJSON(got, c.want) {
			t.Errorf("%s: %s %s (%s): %s, %v; want %s", who, c.service, c.endpoint, c.ct, got, err, c.want)
		}
	}
}

// waitRegistered waits until the registry knows every service named.
func waitRegistered(t *testing.T, r registry.Registry, names ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range names {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := r.GetService(ctx, name)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not registered: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func sameJSON(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}

// TestGoPluginsNotifyConsole: a go-micro v1.16.0 program publishing with
// go-plugins v1.5.1's MQTT broker (tools/gomicro/plugins) reaches a console
// room that watches the topic on --broker=mqtt, through a real mosquitto:
// a go.micro.bot.Notification (JSON through go-micro's client.Publish) is
// posted rendered, and text published raw on go-plugins' broker as text.
func TestGoPluginsNotifyConsole(t *testing.T) {
	srv := mosquittotest.Start(t)
	w := newWorld(t)
	c := w.bot("--broker", "mqtt", "--broker_address", srv.Addr, "--admins", "shell:tester")
	expect(t, "watch", c.ask("watch deploys"), contains("watching deploys: its events will be posted here"))

	pub := gomicrotest.StartPluginsPublisher(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pub.Publish(ctx, gomicrotest.Message{Topic: "deploys",
		JSON: json.RawMessage(`{"title": "deploy of web v2 started", "severity": "warning",
			"fields": [{"name": "service", "value": "web"}], "source": "ci"}`),
		Metadata: map[string]string{"Micro-Message-Type": "go.micro.bot.Notification"}}); err != nil {
		t.Fatal(err)
	}
	post := c.post("the notification")
	if len(post) != 3 || post[0] != "[WARNING] deploy of web v2 started" || post[1] != "service: web" || !strings.HasPrefix(post[2], "— ci, ") {
		t.Errorf("notification printed as %q", post)
	}
	if err := pub.Publish(ctx, gomicrotest.Message{Topic: "deploys", Raw: true,
		Header: map[string]string{"Content-Type": "text/plain"}, Body: []byte("deploy of web v2 done")}); err != nil {
		t.Fatal(err)
	}
	if post := c.post("the text"); post[0] != "deploy of web v2 done" {
		t.Errorf("text printed as %q", post)
	}
}
