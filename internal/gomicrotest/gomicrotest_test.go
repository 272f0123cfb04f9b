package gomicrotest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker/mqtt/mosquittotest"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/gomicrotest"
)

// TestPrograms runs the go-micro programs of each version (v1.8.0, and
// v1.16.0 on go-plugins' Consul registry) against each other on a real
// Consul agent: go-micro's client calls the greeter and the command service
// in both codecs, and gets the errors they answer.
func TestPrograms(t *testing.T) {
	for _, v := range []struct{ version, greeter, command, client string }{
		{"v1.8.0", gomicrotest.Greeter, gomicrotest.Command, gomicrotest.Client},
		{"v1.16.0", gomicrotest.GreeterV116, gomicrotest.CommandV116, gomicrotest.ClientV116},
	} {
		t.Run(v.version, func(t *testing.T) {
			testPrograms(t, v.version, v.greeter, v.command, v.client)
		})
	}
}

func testPrograms(t *testing.T, version, greeterProgram, commandProgram, clientProgram string) {
	agent := consultest.Start(t)
	greeter := gomicrotest.Start(t, greeterProgram, "go.micro.srv.greeter", agent.Addr())
	gomicrotest.Start(t, commandProgram, "go.micro.bot.echo", agent.Addr())
	client := gomicrotest.StartClientOf(t, clientProgram, agent.Addr())
	if greeter.Address() == "" || greeter.NodeID() == "" {
		t.Fatalf("greeter: address %q, node id %q", greeter.Address(), greeter.NodeID())
	}

	tests := []struct {
		service, endpoint string
		req               any
		ct                string
		want              string // response JSON, or
		code              int32  // the error's code
	}{
		{"go.micro.srv.greeter", "Say.Hello", map[string]string{"name": "John"}, "", `{"msg":"Hello John"}`, 0},
		{"go.micro.srv.greeter", "Say.Hello", map[string]string{"name": "John"}, "application/json", `{"msg":"Hello John"}`, 0},
		{"go.micro.srv.greeter", "Say.Fail", map[string]any{"code": 409, "detail": "no"}, "", "", 409},
		{"go.micro.srv.greeter", "Say.Count", map[string]string{"endpoint": "Say.Fail"}, "", `{"count":"1"}`, 0},
		{"go.micro.srv.greeter", "Debug.Health", nil, "", `{"status":"ok"}`, 0},
		{"go.micro.bot.echo", "Command.Help", nil, "", `{"usage":"echo [text]","description":"Returns the [text] (a go-micro ` + version + ` command service)"}`, 0},
		{"go.micro.bot.echo", "Command.Exec", map[string][]string{"args": {"echo", "hi"}}, "", `{"result":"ZWNobyBoaQ=="}`, 0},
		{"go.micro.bot.echo", "Command.Exec", map[string][]string{"args": {"echo", "error", "x"}}, "", `{"error":"error: x"}`, 0},
		// go-micro's client: "error selecting go.micro.srv.nothere node: not found"
		{"go.micro.srv.nothere", "X.Y", nil, "application/json", "", 500},
	}
	for _, tt := range tests {
		got, err := client.Call(tt.service, tt.endpoint, tt.req, tt.ct)
		if tt.code != 0 {
			if e, ok := gomicrotest.AsError(err); !ok || e.Code != tt.code {
				t.Errorf("%s %s: got %s, %v; want an error with code %d", tt.service, tt.endpoint, got, err, tt.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tt.service, tt.endpoint, err)
			continue
		}
		if !jsonEqual(got, tt.want) {
			t.Errorf("%s %s: got %s, want %s", tt.service, tt.endpoint, got, tt.want)
		}
	}
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && equal(x, y)
}

func equal(x, y any) bool {
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(bx) == string(by)
}

// TestProgramsV0 runs go-micro v0.10.0's greeter and client against each
// other: the old framings, both codecs, and an error.
func TestProgramsV0(t *testing.T) {
	agent := consultest.Start(t)
	greeter := gomicrotest.Start(t, gomicrotest.GreeterV0, "go.micro.srv.old", agent.Addr(), "--server_name=go.micro.srv.old")
	if greeter.Address() == "" {
		t.Fatalf("address of %s", greeter.Name())
	}
	client := gomicrotest.StartClientV0(t, agent.Addr())
	for _, ct := range []string{"", "application/protobuf", "application/json"} {
		got, err := client.Call("go.micro.srv.old", "Say.Hello", map[string]string{"name": "John"}, ct)
		if err != nil || !jsonEqual(got, `{"msg":"Hello John"}`) {
			t.Errorf("%q: Say.Hello = %s, %v", ct, got, err)
		}
	}
	_, err := client.Call("go.micro.srv.old", "Say.Fail", map[string]string{"name": "no"}, "")
	if e, ok := gomicrotest.AsError(err); !ok || e.Code != 409 || e.Detail != "no" {
		t.Errorf("Say.Fail: %v", err)
	}
}

// TestPubSubPrograms runs go-micro's publisher against its subscribers,
// each pair on its broker: go-micro v1.8.0 on its http broker with a real
// Consul agent, go-micro v1.16.0 on go-plugins' MQTT broker with a real
// mosquitto; through go-micro's client in both codecs, with metadata, and
// raw on the broker.
func TestPubSubPrograms(t *testing.T) {
	for _, tt := range []struct {
		name   string
		server func(t *testing.T) string // starts the registry or MQTT server, returns its address
		sub    func(tb testing.TB, addr string, args ...string) *gomicrotest.SubscriberProcess
		pub    func(tb testing.TB, addr string, args ...string) *gomicrotest.PublisherProcess
	}{
		{"http", func(t *testing.T) string { return consultest.Start(t).Addr() },
			gomicrotest.StartSubscriber, gomicrotest.StartPublisher},
		{"go-plugins mqtt", func(t *testing.T) string { return mosquittotest.Start(t).Addr },
			gomicrotest.StartPluginsSubscriber, gomicrotest.StartPluginsPublisher},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.server(t)
			sub := tt.sub(t, addr, "--topics=t.one,t.two")
			raw := tt.sub(t, addr, "--topics=t.raw", "--raw", "--server_name=go.micro.srv.raw")
			pubSub(t, tt.pub(t, addr), sub, raw)
		})
	}
}

func pubSub(t *testing.T, pub *gomicrotest.PublisherProcess, sub, raw *gomicrotest.SubscriberProcess) {
	ctx := context.Background()
	for _, m := range []gomicrotest.Message{
		{Topic: "t.one", Args: []string{"a"}, Metadata: map[string]string{"Micro-User": "u"}},
		{Topic: "t.two", Args: []string{"b"}, ContentType: "application/json"},
		{Topic: "t.raw", Raw: true, Header: map[string]string{"H": "v"}, Body: []byte("body")},
	} {
		if err := pub.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]gomicrotest.Event{}
	for range 2 {
		e, err := sub.Next(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got[e.Topic] = e
	}
	if e := got["t.one"]; len(e.Args) != 1 || e.Args[0] != "a" || e.Header["Micro-User"] != "u" || e.Header["Content-Type"] != "application/protobuf" {
		t.Errorf("t.one: %+v", e)
	}
	if e := got["t.two"]; len(e.Args) != 1 || e.Args[0] != "b" || e.Header["Content-Type"] != "application/json" {
		t.Errorf("t.two: %+v", e)
	}
	e, err := raw.Next(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if e.Topic != "t.raw" || e.Header["H"] != "v" || string(e.Body) != "body" {
		t.Errorf("t.raw: %+v", e)
	}
}

// TestV116CopiesAreTheSame: the go-micro v1.16.0 greeter, command service
// and client (tools/gomicro/plugins) are copies of the v1.8.0 ones, their
// own module's because one build cannot hold both go-micro versions; they
// differ only in the version named, the import of go-plugins' Consul
// registry and the path of go-micro's debug proto, so both versions'
// tests test the same programs.
func TestV116CopiesAreTheSame(t *testing.T) {
	root := filepath.Join("..", "..", "tools", "gomicro")
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "v1.16.0", "v1.8.0")
		s = strings.ReplaceAll(s, "tools/gomicro/plugins/proto/", "tools/gomicro/proto/")
		// The debug proto's import: another path, so sorted elsewhere.
		var keep []string
		for l := range strings.SplitSeq(s, "\n") {
			if !strings.Contains(l, `debugproto "github.com/micro/go-micro/`) {
				keep = append(keep, l)
			}
		}
		s = strings.Join(keep, "\n")
		if i := strings.Index(s, "\n\n\t// go-plugins' Consul registry"); i >= 0 {
			if j := strings.Index(s[i:], "\n)\n"); j >= 0 {
				s = s[:i] + s[i+j:]
			}
		}
		return s
	}
	for _, f := range []string{"cmd/greeter/main.go", "cmd/command/main.go", "cmd/client/main.go", "proto/greeter/greeter.pb.go", "proto/greeter/greeter.micro.go"} {
		if read(f) != read(filepath.Join("plugins", f)) {
			t.Errorf("tools/gomicro/plugins/%s differs from tools/gomicro/%s beyond the version: copy it again", f, f)
		}
	}
}
