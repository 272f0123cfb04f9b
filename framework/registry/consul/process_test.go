package consul_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/framework/selector"
	"github.com/microbot/microbot/internal/testenv"
)

// These tests run the greeter example (examples/greeter) as separate OS
// processes registered in a real Consul agent, and call it from this test
// process through the framework's client, which finds it in Consul.

const greeterName = "go.micro.srv.greeter"

// TestMain removes the greeter binaries the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }

// greeterProc is one greeter process. It listens on a port of its own and
// publishes the address of a counting proxy in front of it, so the test can
// tell which process served each call; killing the greeter closes the proxy
// too, so its published address refuses connections as a dead process's
// would.
type greeterProc struct {
	name   string
	cmd    *exec.Cmd
	out    *testenv.Buffer
	exited chan struct{}
	proxy  *http.Server
	addr   string // published (proxy) address
	calls  atomic.Int64
}

// startGreeter starts the greeter binary bin as node name, registering
// with Consul at consulAddr (a comma-separated list), with env appended to
// its environment (token, TLS).
func startGreeter(t testing.TB, bin, name, consulAddr string, env ...string) *greeterProc {
	t.Helper()
	listen := deadAddr(t) // a free port for the greeter itself
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &greeterProc{name: name, out: &testenv.Buffer{}, exited: make(chan struct{}), addr: l.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: listen})
	g.proxy = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Micro-Endpoint") == "Say.Hello" {
			g.calls.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	go g.proxy.Serve(l)

	g.cmd = exec.Command(bin,
		"--registry=consul", "--registry_address="+consulAddr,
		"--server_address="+listen, "--server_advertise="+g.addr,
		"--server_id="+name)
	// TTL and interval through the MICRO_* environment, as deployments do.
	g.cmd.Env = append(os.Environ(), "MICRO_REGISTER_TTL=3s", "MICRO_REGISTER_INTERVAL=500ms", "CONSUL_HTTP_ADDR=", "CONSUL_HTTP_TOKEN=")
	g.cmd.Env = append(g.cmd.Env, env...)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	if err := testenv.StartCommand(g.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		g.kill(t)
		if t.Failed() {
			t.Logf("output of greeter %s:\n%s", name, g.out.String())
		}
	})
	return g
}

// kill SIGKILLs the greeter (no chance to deregister) and closes its proxy.
func (g *greeterProc) kill(t testing.TB) {
	t.Helper()
	g.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(wait):
		t.Errorf("greeter %s still running %v after SIGKILL", g.name, wait)
	}
	g.proxy.Close()
}

// watchState replays a watcher's events into the set of node ids it shows
// per service, so the test can wait for the watcher's view to reach a state.
type watchState struct {
	mu      sync.Mutex
	nodes   map[string]map[string][]string // service -> version -> node ids
	actions map[string][]string            // service -> actions seen, "create[id ...]"
}

func follow(t testing.TB, w registry.Watcher) *watchState {
	ws := &watchState{nodes: map[string]map[string][]string{}, actions: map[string][]string{}}
	go func() {
		for {
			r, err := w.Next()
			if err != nil {
				return
			}
			name := r.Service.Name
			ids := nodeIDs([]*registry.Service{r.Service})
			ws.mu.Lock()
			if ws.nodes[name] == nil {
				ws.nodes[name] = map[string][]string{}
			}
			if r.Action == registry.Delete {
				delete(ws.nodes[name], r.Service.Version)
			} else {
				ws.nodes[name][r.Service.Version] = ids
			}
			ws.actions[name] = append(ws.actions[name], fmt.Sprintf("%s%v", r.Action, ids))
			ws.mu.Unlock()
		}
	}()
	return ws
}

// expect waits until the watcher's view of the greeter holds exactly ids.
func (ws *watchState) expect(t *testing.T, ids ...string) {
	t.Helper()
	ws.expectService(t, greeterName, wait, ids...)
}

// expectService waits up to timeout until the watcher's view of the named
// service holds exactly ids.
func (ws *watchState) expectService(t *testing.T, name string, timeout time.Duration, ids ...string) {
	t.Helper()
	slices.Sort(ids)
	eventuallyWithin(t, timeout, fmt.Sprintf("the watcher shows %s %v", name, ids), func() error {
		return ws.shows(name, ids)
	})
}

// shows returns nil if the watcher's view of the named service holds
// exactly ids (sorted), else an error saying what it shows.
func (ws *watchState) shows(name string, ids []string) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var got []string
	for _, v := range ws.nodes[name] {
		got = append(got, v...)
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		return fmt.Errorf("watcher shows %s %v after events %v", name, got, ws.actions[name])
	}
	return nil
}

// expectSelected waits until sel's Select of the greeter yields exactly
// ids (none: not found), as the client's calls will.
func expectSelected(t *testing.T, sel selector.Selector, ids ...string) {
	t.Helper()
	slices.Sort(ids)
	eventually(t, fmt.Sprintf("the client's selector yields %v", ids), func() error {
		next, err := sel.Select(ctxT(t), greeterName)
		if len(ids) == 0 && errors.Is(err, registry.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var got []string
		for n, err := next(); err == nil; n, err = next() {
			got = append(got, n.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			return fmt.Errorf("it yields %v", got)
		}
		return nil
	})
}

type helloReq struct {
	Name string `json:"name"`
}

type helloRsp struct {
	Msg string `json:"msg"`
}

func hello(ctx context.Context, c *client.Client, who string, opts ...client.CallOption) error {
	var rsp helloRsp
	if err := c.Call(ctx, greeterName, "Say.Hello", &helloReq{Name: who}, &rsp, opts...); err != nil {
		return err
	}
	if want := "Hello " + who; rsp.Msg != want {
		return fmt.Errorf("Say.Hello answered %q, want %q", rsp.Msg, want)
	}
	return nil
}

// TestGreeterProcessesOverConsul: greeters in their own processes register
// in Consul, are called from here, expire when SIGKILLed, register again by
// themselves when the agent restarts, and share the calls between them; a
// watcher follows every step.
func TestGreeterProcessesOverConsul(t *testing.T) {
	agent := consultest.Start(t)
	bin := testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	reg := newRegistry(t, consul.WithAddrs(agent.Addr()))
	w, err := reg.Watch(context.Background(), registry.WithService(greeterName))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ws := follow(t, w)
	// The client's selector follows the registry through a watch of its
	// own, which may show a change later than the test's watcher (a loaded
	// machine, a watch still in its backoff after the agent restarted):
	// where a step needs the client to know of a change, the test waits
	// until the selector shows it (expectSelected).
	sel := selector.New(reg)
	defer sel.Close()
	c, err := client.New(client.WithRegistry(reg), client.WithSelector(sel))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t)

	// One greeter: found and called.
	a := startGreeter(t, bin, "greeter-a", agent.Addr())
	expectNodes(t, reg, greeterName, "greeter-a")
	ws.expect(t, "greeter-a")
	eventually(t, "a call to the greeter", func() error { return hello(ctx, c, "John") })

	// Consul restarts empty; the greeter registers again by itself.
	if err := agent.Restart(); err != nil {
		t.Fatal(err)
	}
	expectNodes(t, reg, greeterName, "greeter-a")
	ws.expect(t, "greeter-a")
	eventually(t, "a call after the agent restarted", func() error { return hello(ctx, c, "again") })

	// Two greeters: the calls are spread across both.
	b := startGreeter(t, bin, "greeter-b", agent.Addr())
	expectNodes(t, reg, greeterName, "greeter-a", "greeter-b")
	ws.expect(t, "greeter-a", "greeter-b")
	expectSelected(t, sel, "greeter-a", "greeter-b")
	a.calls.Store(0)
	for i := range 40 {
		if err := hello(ctx, c, fmt.Sprint("caller ", i)); err != nil {
			t.Fatalf("call %d with two greeters: %v", i, err)
		}
	}
	if a.calls.Load() == 0 || b.calls.Load() == 0 {
		t.Fatalf("40 calls went %d to greeter-a and %d to greeter-b; want both used", a.calls.Load(), b.calls.Load())
	}
	t.Logf("40 calls: %d to greeter-a, %d to greeter-b", a.calls.Load(), b.calls.Load())

	// One killed: every call still succeeds, and it leaves Consul's
	// answers within its TTL. Say.Hello is idempotent and marked so: a call
	// may go out on a kept-alive connection to the dead node that the
	// client has not yet seen closed, and only an idempotent call may then
	// be retried on the other node (a connection refused is retried anyway).
	b.kill(t)
	for i := range 40 {
		if err := hello(ctx, c, fmt.Sprint("after the kill ", i), client.WithIdempotent()); err != nil {
			t.Fatalf("call %d after greeter-b was killed: %v", i, err)
		}
	}
	expectNodes(t, reg, greeterName, "greeter-a")
	ws.expect(t, "greeter-a")

	// The last one killed: gone from GetService, ListServices and the
	// watcher; calls fail with not found.
	a.kill(t)
	expectNodes(t, reg, greeterName)
	ws.expect(t)
	expectSelected(t, sel)
	list, err := reg.ListServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Name == greeterName {
			t.Errorf("ListServices still lists %s after every node died", greeterName)
		}
	}
	err = hello(ctx, c, "nobody")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("call with no greeter left = %v, want not found", err)
	}
}

// TestGreeterConsulUnreachable: a greeter started while Consul is down
// keeps trying and registers once the agent comes up.
func TestGreeterConsulUnreachable(t *testing.T) {
	agent := consultest.Start(t)
	bin := testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	if err := agent.Stop(); err != nil {
		t.Fatal(err)
	}
	g := startGreeter(t, bin, "greeter-late", agent.Addr())
	time.Sleep(time.Second) // a couple of failed register attempts
	select {
	case <-g.exited:
		t.Fatalf("the greeter exited while Consul was down:\n%s", g.out.String())
	default:
	}
	if err := agent.Restart(); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, consul.WithAddrs(agent.Addr()))
	expectNodes(t, reg, greeterName, "greeter-late")
	c, err := client.New(client.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "a call to the late greeter", func() error { return hello(ctxT(t), c, "late") })
	if out := g.out.String(); !strings.Contains(out, agent.Addr()) {
		t.Errorf("the greeter's log does not name the Consul address it could not reach:\n%s", out)
	}
}

// TestCallsWhileConsulDown: with Consul gone, callers keep calling the
// nodes they last saw, from the selector's cache, even once the cached list
// is old enough to be looked up again (the lookup fails and the list is
// kept); when Consul is back, the greeter registers again and lookups work.
func TestCallsWhileConsulDown(t *testing.T) {
	agent := consultest.Start(t)
	bin := testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	reg := newRegistry(t, consul.WithAddrs(agent.Addr()))
	sel := selector.New(reg, selector.WithCacheTTL(300*time.Millisecond))
	defer sel.Close()
	c, err := client.New(client.WithRegistry(reg), client.WithSelector(sel))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t)

	startGreeter(t, bin, "greeter-cached", agent.Addr())
	expectNodes(t, reg, greeterName, "greeter-cached")
	eventually(t, "a call to the greeter", func() error { return hello(ctx, c, "John") })

	if err := agent.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GetService(ctx, greeterName); err == nil {
		t.Fatal("GetService works with the agent stopped")
	}
	for i := range 10 {
		time.Sleep(100 * time.Millisecond) // past the cache TTL: lookups are tried and fail
		if err := hello(ctx, c, fmt.Sprint("while Consul is down ", i)); err != nil {
			t.Fatalf("call %d with Consul down: %v", i, err)
		}
	}

	if err := agent.Restart(); err != nil {
		t.Fatal(err)
	}
	expectNodes(t, reg, greeterName, "greeter-cached")
	eventually(t, "a call once Consul is back", func() error { return hello(ctx, c, "back") })
}
