package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/internal/testenv"
)

// These tests run services as separate OS processes that find the test
// process (the caller) through a local registry in a temporary directory.
// The greeter is built with go build; a second service with faulty
// endpoints is this test binary started again with GREETER_TEST_FAULTY=1.

const greeter = "go.micro.srv.greeter"

func TestMain(m *testing.M) {
	if os.Getenv("GREETER_TEST_FAULTY") == "1" {
		faultyMain()
		return
	}
	testenv.Main(m)
}

// Faulty has endpoints that misbehave, to show the server survives them.
type Faulty struct{}

// Panic panics.
func (Faulty) Panic(ctx context.Context, req *Request, rsp *Response) error {
	panic("boom for " + req.Name)
}

// Slow works until the caller's deadline.
func (Faulty) Slow(ctx context.Context, req *Request, rsp *Response) error {
	<-ctx.Done()
	return ctx.Err()
}

// faultyMain is a greeter that also serves Faulty; configured by the MICRO_*
// environment variables.
func faultyMain() {
	svc, err := framework.NewService(framework.WithName(greeter), framework.WithVersion("faulty"), framework.WithArgs(os.Args[:1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, h := range []any{&Say{}, Faulty{}} {
		if err := svc.Server().Handle(h); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := svc.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

type proc struct {
	cmd    *exec.Cmd
	out    *testenv.Buffer
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// start runs bin with args and env; the process is killed when the test
// ends, and its output logged if the test failed.
func start(t *testing.T, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &testenv.Buffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), env...)
	if err := testenv.StartCommand(p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill() //nolint:errcheck // may have exited
		<-p.exited
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.out.String())
		}
	})
	return p
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatal("the process did not exit within 20s")
		return nil
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// nodes returns the addresses of the registered greeter nodes.
func nodes(r registry.Registry) []string {
	svcs, err := r.GetService(context.Background(), greeter)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range svcs {
		for _, n := range s.Nodes {
			out = append(out, n.Address)
		}
	}
	return out
}

// caller returns a client finding services in the local registry at dir.
func caller(t *testing.T, dir string) (*client.Client, registry.Registry) {
	t.Helper()
	svc, err := framework.NewService(framework.WithRegistryName("local", dir))
	if err != nil {
		t.Fatal(err)
	}
	return svc.Client(), svc.Registry()
}

func hello(t *testing.T, c *client.Client, who string) {
	t.Helper()
	var rsp Response
	if err := c.Call(context.Background(), greeter, "Say.Hello", &Request{Name: who}, &rsp); err != nil {
		t.Fatalf("Say.Hello: %v", err)
	}
	if want := "Hello " + who; rsp.Msg != want {
		t.Fatalf("Say.Hello answered %q, want %q", rsp.Msg, want)
	}
}

func flags(dir, ttl string) []string {
	return []string{"--registry=local", "--registry_address=" + dir, "--register_ttl=" + ttl,
		"--register_interval=500ms", "--server_address=127.0.0.1:0"}
}

func TestGreeterProcess(t *testing.T) {
	bin := testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	dir := t.TempDir()
	c, r := caller(t, dir)

	g := start(t, bin, flags(dir, "2s"), nil)
	testenv.Eventually(t, 20*time.Second, "the greeter is registered", func() bool { return len(nodes(r)) == 1 })
	hello(t, c, "John")

	var raw json.RawMessage
	if err := c.Call(context.Background(), greeter, "Say.Hello", json.RawMessage(`{"name": "John"}`), &raw); err != nil || string(raw) != `{"msg":"Hello John"}` {
		t.Errorf("raw JSON query = %s, %v", raw, err)
	}
	for _, ct := range []string{"application/json", "application/protobuf"} {
		var h server.HealthResponse
		if err := c.Call(context.Background(), greeter, server.HealthEndpoint, &server.HealthRequest{}, &h, client.WithContentType(ct)); err != nil || h.Status != "ok" {
			t.Errorf("Debug.Health over %s = %q, %v", ct, h.Status, err)
		}
	}
	svcs, _ := r.GetService(context.Background(), greeter)
	if got := endpointNames(svcs); got != "Debug.Health,Say.Hello" {
		t.Errorf("published endpoints %s", got)
	}

	t.Run("bad input", func(t *testing.T) {
		badInput(t, c, nodes(r)[0], []badCase{
			unknownService, unknownEndpoint, malformedBody, oversizeBody(5 << 20),
		})
	})

	// Killed without a chance to deregister: gone within its TTL.
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.wait(t) //nolint:errcheck // killed
	testenv.Eventually(t, 20*time.Second, "the killed greeter expires from the registry", func() bool { return len(nodes(r)) == 0 })
	// The client's selector learns it from its registry watch: until then
	// a call fails to reach the dead node (503), then it is unknown (404).
	var err error
	testenv.Eventually(t, 20*time.Second, "calls say the service is not found", func() bool {
		err = c.Call(context.Background(), greeter, "Say.Hello", &Request{Name: "x"}, &Response{})
		e := rpcerr.FromError(err)
		if e == nil || e.Code != 404 && e.Code != 503 {
			t.Fatalf("call after the kill = %v, want 503 then 404", err)
		}
		return e.Code == 404 && e.Detail == "service go.micro.srv.greeter: not found"
	})

	// Restarted, it comes back. With a TTL of a minute, its leaving right
	// after SIGTERM shows it deregistered itself.
	g2 := start(t, bin, flags(dir, "60s"), nil)
	testenv.Eventually(t, 20*time.Second, "the restarted greeter is registered", func() bool { return len(nodes(r)) == 1 })
	testenv.Eventually(t, 20*time.Second, "the restarted greeter answers", func() bool {
		return c.Call(context.Background(), greeter, "Say.Hello", &Request{Name: "again"}, &Response{}) == nil
	})
	hello(t, c, "again")
	if err := g2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := g2.wait(t); err != nil {
		t.Errorf("greeter exited with %v after SIGTERM, want status 0", err)
	}
	if n := nodes(r); len(n) != 0 {
		t.Errorf("greeter still registered at %v after a clean exit", n)
	}
}

func TestFaultyProcess(t *testing.T) {
	dir := t.TempDir()
	c, r := caller(t, dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, self, nil, []string{
		"GREETER_TEST_FAULTY=1", "MICRO_REGISTRY=local", "MICRO_REGISTRY_ADDRESS=" + dir,
		"MICRO_REGISTER_TTL=10s", "MICRO_REGISTER_INTERVAL=1s", "MICRO_SERVER_MAX_BODY_SIZE=64KiB",
	})
	testenv.Eventually(t, 20*time.Second, "the faulty greeter is registered", func() bool { return len(nodes(r)) == 1 })
	hello(t, c, "John")
	badInput(t, c, nodes(r)[0], []badCase{
		unknownService, unknownEndpoint, malformedBody, oversizeBody(100 << 10),
		{"handler panic", greeter, "Faulty.Panic", &Request{Name: "Ann"}, nil, 500, "handler Faulty.Panic panicked: boom for Ann"},
		{"handler exceeds the caller's timeout", greeter, "Faulty.Slow", &Request{}, []client.CallOption{client.WithRequestTimeout(500 * time.Millisecond)},
			408, "call to go.micro.srv.greeter Faulty.Slow timed out after 500ms"},
	})
	if !p.alive() {
		t.Fatal("the faulty greeter died")
	}
	if out := p.out.String(); !strings.Contains(out, "handler panicked") || !strings.Contains(out, "goroutine") {
		t.Errorf("the panic was not logged with its stack:\n%s", out)
	}
}

type badCase struct {
	name     string
	service  string
	endpoint string
	req      any
	opts     []client.CallOption
	code     int32
	detail   string
}

var (
	unknownService  = badCase{"unknown service", "go.micro.srv.nope", "Say.Hello", &Request{}, nil, 404, "service go.micro.srv.nope: not found"}
	unknownEndpoint = badCase{"unknown endpoint", greeter, "Say.Bye", &Request{}, nil, 404, "unknown endpoint Say.Bye of service go.micro.srv.greeter"}
	malformedBody   = badCase{"malformed body", greeter, "Say.Hello", json.RawMessage(`{"name": ["John"]}`), nil, 400,
		"malformed request for Say.Hello: json: cannot unmarshal array into Go struct field Request.name of type string"}
)

func oversizeBody(n int) badCase {
	return badCase{"oversize body", greeter, "Say.Hello", &Request{Name: strings.Repeat("x", n)}, nil, 413,
		"request body for Say.Hello is larger than the limit of"}
}

// badInput checks each case gets its clear error and the service still
// answers afterwards; then sends a call with a wrong content type straight
// to node, as any HTTP client could.
func badInput(t *testing.T, c *client.Client, node string, cases []badCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Call(context.Background(), tt.service, tt.endpoint, tt.req, &Response{}, tt.opts...)
			var e *rpcerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %#v is not an *rpcerr.Error", err)
			}
			if e.Code != tt.code || !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("error = %d %q, want %d containing %q", e.Code, e.Detail, tt.code, tt.detail)
			}
			hello(t, c, "after "+tt.name)
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+node+"/", strings.NewReader(`name=John`))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Micro-Service", greeter)
		req.Header.Set("Micro-Endpoint", "Say.Hello")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		e := rpcerr.Parse(res.Header.Get("Micro-Error"))
		want := `unsupported content type "application/x-www-form-urlencoded" for Say.Hello; supported: application/json, application/protobuf`
		if res.StatusCode != 415 || e.Detail != want {
			t.Errorf("got %d %s, want 415 %q", res.StatusCode, body, want)
		}
		hello(t, c, "after a wrong content type")
	})
}

func endpointNames(svcs []*registry.Service) string {
	var names []string
	for _, s := range svcs {
		for _, e := range s.Endpoints {
			names = append(names, e.Name)
		}
	}
	return strings.Join(names, ",")
}
