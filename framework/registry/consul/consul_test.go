package consul_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/framework/registry/registrytest"
	"github.com/microbot/microbot/internal/testenv"
)

// wait bounds every wait for a condition: generous, the machine is busy.
const wait = 30 * time.Second

func newRegistry(t testing.TB, opts ...consul.Option) *consul.Registry {
	t.Helper()
	r, err := consul.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it returns nil, failing the test after wait.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	eventuallyWithin(t, wait, what, cond)
}

// eventuallyWithin polls cond until it returns nil, failing the test with
// cond's last error after timeout.
func eventuallyWithin(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func greeter(name, version string, ids ...string) *registry.Service {
	s := &registry.Service{
		Name:     name,
		Version:  version,
		Metadata: map[string]string{"team": "ops"},
		Endpoints: []*registry.Endpoint{{
			Name:     "Say.Hello",
			Request:  &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{{Name: "name", Type: "string"}}},
			Response: &registry.Value{Name: "Response", Type: "Response", Values: []*registry.Value{{Name: "msg", Type: "string"}}},
		}},
	}
	for i, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{ID: id, Address: fmt.Sprintf("127.0.0.1:%d", 9000+i), Metadata: map[string]string{"transport": "http"}})
	}
	return s
}

func nodeIDs(svcs []*registry.Service) []string {
	var ids []string
	for _, s := range svcs {
		for _, n := range s.Nodes {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// expectNodes polls GetService until it returns exactly ids (none: not found).
func expectNodes(t testing.TB, r registry.Registry, name string, ids ...string) {
	t.Helper()
	slices.Sort(ids)
	eventually(t, "nodes of "+name, func() error {
		svcs, err := r.GetService(ctxT(t), name)
		if len(ids) == 0 {
			if errors.Is(err, registry.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("GetService = %v, %v; want ErrNotFound", nodeIDs(svcs), err)
		}
		if err != nil {
			return err
		}
		if got := nodeIDs(svcs); !slices.Equal(got, ids) {
			return fmt.Errorf("nodes %v, want %v", got, ids)
		}
		return nil
	})
}

func TestConformance(t *testing.T) {
	agent := consultest.Start(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		return newRegistry(t, consul.WithAddrs(agent.Addr()))
	}, registrytest.WithTTL(2*time.Second), registrytest.WithWait(wait))
}

// Two registries on one agent, as two bots: what one writes the other
// reads, and its blocking List wakes.
func TestKVConformance(t *testing.T) {
	agent := consultest.Start(t)
	registrytest.RunKV(t, func(t *testing.T) (registry.KV, registry.KV) {
		return newRegistry(t, consul.WithAddrs(agent.Addr())).KV(), newRegistry(t, consul.WithAddrs(agent.Addr())).KV()
	}, registrytest.WithWait(wait))
}

func TestAddrsLists(t *testing.T) {
	r, err := consul.New(consul.WithAddrs("127.0.0.1:1, 127.0.0.1:2", "127.0.0.1:3"), consul.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != "consul" {
		t.Errorf("String() = %q", r.String())
	}
	got := r.Addrs()
	if want := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}; !slices.Equal(got, want) {
		t.Errorf("Addrs() = %v, want %v (comma-separated lists split)", got, want)
	}
}

func TestAddressFromEnvironment(t *testing.T) {
	t.Setenv("CONSUL_HTTP_ADDR", "")
	if got := newRegistry(t).Addrs(); !slices.Equal(got, []string{consul.DefaultAddress}) {
		t.Errorf("without Addrs or CONSUL_HTTP_ADDR: %v, want %s", got, consul.DefaultAddress)
	}
	t.Setenv("CONSUL_HTTP_ADDR", "127.0.0.1:7777")
	if got := newRegistry(t).Addrs(); !slices.Equal(got, []string{"127.0.0.1:7777"}) {
		t.Errorf("without Addrs: %v, want CONSUL_HTTP_ADDR", got)
	}
	if got := newRegistry(t, consul.WithAddrs("127.0.0.1:8888")).Addrs(); !slices.Equal(got, []string{"127.0.0.1:8888"}) {
		t.Errorf("with Addrs: %v, want Addrs to win over CONSUL_HTTP_ADDR", got)
	}
	if _, err := consul.New(consul.WithAddrs("ftp://127.0.0.1:1")); err == nil {
		t.Error("New accepted an ftp:// address")
	}
}

// TestExactRoundTrip registers definitions whose nil and empty maps and
// lists differ, and a thousand endpoints, and gets them back identical.
func TestExactRoundTrip(t *testing.T) {
	agent := consultest.Start(t)
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))

	big := &registry.Service{Name: "go.micro.srv.big", Version: "3.1.4"}
	for i := range 1000 {
		big.Endpoints = append(big.Endpoints, &registry.Endpoint{
			Name: fmt.Sprintf("Big.Method%04d", i),
			Request: &registry.Value{Name: "Request", Type: fmt.Sprintf("M%dRequest", i), Values: []*registry.Value{
				{Name: "id", Type: "string"}, {Name: "page", Type: "Page", Values: []*registry.Value{{Name: "limit", Type: "int64"}}},
			}},
			Response: &registry.Value{Name: "Response", Type: fmt.Sprintf("M%dResponse", i), Values: []*registry.Value{{Name: "items", Type: "[]Item"}}},
		})
	}
	big.Nodes = []*registry.Node{{ID: "big-1", Address: "127.0.0.1:4000"}}

	tests := []*registry.Service{
		{Name: "exact.nil", Nodes: []*registry.Node{{ID: "nil-1", Address: "127.0.0.1:1"}}},
		{
			Name: "exact.empty", Version: "", Metadata: map[string]string{}, Endpoints: []*registry.Endpoint{},
			Nodes: []*registry.Node{{ID: "empty-1", Address: "[::1]:2", Metadata: map[string]string{}}},
		},
		{
			Name: "exact.odd", Version: "v1 \"q\" ü", Metadata: map[string]string{"consul-x": "reserved prefix", "a.b": ""},
			Endpoints: []*registry.Endpoint{{Name: "A.B", Metadata: map[string]string{}, Request: &registry.Value{Name: "R", Values: []*registry.Value{}}}},
			Nodes:     []*registry.Node{{ID: "odd-1", Address: "localhost", Metadata: map[string]string{"k/with spaces": "v"}}},
		},
		big,
	}
	for _, want := range tests {
		t.Run(want.Name, func(t *testing.T) {
			if err := r.Register(ctxT(t), want, registry.WithTTL(time.Minute)); err != nil {
				t.Fatal(err)
			}
			expectNodes(t, r, want.Name, want.Nodes[0].ID)
			got, err := r.GetService(ctxT(t), want.Name)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("GetService(%s) is not what was registered:\n got  %+v\n want %+v", want.Name, got[0], want)
			}
		})
	}
}

// TestConsulView checks what a node looks like in Consul itself, as the
// package documentation describes it.
func TestConsulView(t *testing.T) {
	agent := consultest.Start(t)
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))
	svc := greeter("go.micro.srv.greeter", "1.2.3", "greeter-1")
	if err := r.Register(ctxT(t), svc, registry.WithTTL(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(&api.Config{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := c.Agent().Service("greeter-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Service != svc.Name || s.Address != "127.0.0.1" || s.Port != 9000 {
		t.Errorf("name/address/port = %q %q %d", s.Service, s.Address, s.Port)
	}
	// "microbot", go-micro's tags (version, one per node metadata pair, one
	// per endpoint), microbot's plain version.
	kinds := ""
	for _, tag := range s.Tags[1 : len(s.Tags)-1] {
		kinds += tag[:2]
	}
	if s.Tags[0] != consul.Tag || s.Tags[len(s.Tags)-1] != consul.VersionTagPrefix+"1.2.3" || kinds != "v-t-e-" {
		t.Errorf("tags = %v", s.Tags)
	}
	if s.Meta["version"] != "1.2.3" || s.Meta["microbot"] != "1" || s.Meta["microbot_chunks"] != "1" || s.Meta["microbot_0"] == "" {
		t.Errorf("meta = %v", s.Meta)
	}
	checks, err := c.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	ch := checks["service:greeter-1"]
	if ch == nil || ch.Type != "ttl" || ch.Status != api.HealthPassing || ch.ServiceID != "greeter-1" {
		t.Fatalf("TTL check = %+v", ch)
	}
}

// recorder is a reverse proxy in front of an agent that records the
// requests it forwards ("PUT /v1/agent/check/update/...") and the
// consistency of each read ("stale" or "consistent"). It can make the agent
// look out of touch with its leader (lag: stale answers carry a
// LastContact of a minute) and leaderless (consistent reads answer 500 "No
// cluster leader").
type recorder struct {
	*httptest.Server
	mu              sync.Mutex
	reqs            []string
	reads           []string
	lag, leaderless bool
}

func newRecorder(t *testing.T, target string) *recorder {
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.lag && resp.Request.URL.Query().Has("stale") {
			resp.Header.Set("X-Consul-LastContact", "60000")
		}
		return nil
	}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		stale := req.URL.Query().Has("stale")
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, req.Method+" "+req.URL.Path)
		if req.Method == http.MethodGet {
			rec.reads = append(rec.reads, map[bool]string{true: "stale", false: "consistent"}[stale])
		}
		leaderless := rec.leaderless
		rec.mu.Unlock()
		if req.Method == http.MethodGet && !stale && leaderless {
			http.Error(w, "No cluster leader", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(rec.Close)
	return rec
}

// take returns the requests recorded since the last take.
func (rec *recorder) take() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.reqs
	rec.reqs = nil
	return r
}

// takeReads returns the reads' consistency recorded since the last call.
func (rec *recorder) takeReads() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.reads
	rec.reads = nil
	return r
}

// set makes the agent look lagging and leaderless, or not, and forgets
// what was recorded.
func (rec *recorder) set(lag, leaderless bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.lag, rec.leaderless, rec.reqs, rec.reads = lag, leaderless, nil, nil
}

func (rec *recorder) addr() string { return strings.TrimPrefix(rec.URL, "http://") }

// TestRefreshIsCheap shows that registering an unchanged node again only
// passes its TTL check, that a changed node is registered in full, and that
// a node the agent lost is registered again. After a registration in full
// the registry reads the agent's node once and confirms the instance is in
// the catalog (one read, or a second waiting for the agent's sync), and
// then stops: a refresh costs one small PUT.
func TestRefreshIsCheap(t *testing.T) {
	agent := consultest.Start(t)
	rec := newRecorder(t, agent.Addr())
	r := newRegistry(t, consul.WithAddrs(rec.addr()))
	svc := greeter("cheap", "1", "cheap-1")
	ttl := registry.WithTTL(10 * time.Second)

	const (
		register = "PUT /v1/agent/service/register"
		refresh  = "PUT /v1/agent/check/update/service:cheap-1"
		node     = "GET /v1/agent/checks"
		confirm  = "GET /v1/health/service/cheap"
	)
	steps := []struct {
		name    string
		do      func() error
		want    []string
		confirm bool // then the node's and one or two confirming reads
	}{
		{"first", func() error { return r.Register(ctxT(t), svc, ttl) }, []string{register}, true},
		{"refresh", func() error { return r.Register(ctxT(t), svc, ttl) }, []string{refresh}, false},
		{"changed", func() error {
			svc.Metadata["team"] = "dev"
			return r.Register(ctxT(t), svc, ttl)
		}, []string{register}, true},
		{"lost by the agent", func() error {
			if err := agent.Restart(); err != nil {
				return err
			}
			return r.Register(ctxT(t), svc, ttl)
		}, []string{refresh, register}, true},
		{"refresh again", func() error { return r.Register(ctxT(t), svc, ttl) }, []string{refresh}, false},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !consul.WaitConfirmed(r, wait) {
			t.Fatalf("%s: still confirming after %v", st.name, wait)
		}
		got := rec.take()
		want := st.want
		if st.confirm {
			want = append(want, node, confirm)
			if len(got) == len(want)+1 {
				want = append(want, confirm) // the first read was before the agent's sync
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: requests %q, want %q", st.name, got, want)
		}
	}
	expectNodes(t, r, "cheap", "cheap-1")
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachable(t *testing.T) {
	dead := deadAddr(t)
	r := newRegistry(t, consul.WithAddrs(dead))
	svc := greeter("unreachable", "1", "u-1")
	for name, call := range map[string]func() error{
		"Register":     func() error { return r.Register(context.Background(), svc) },
		"Deregister":   func() error { return r.Deregister(context.Background(), svc) },
		"GetService":   func() error { _, err := r.GetService(context.Background(), svc.Name); return err },
		"ListServices": func() error { _, err := r.ListServices(context.Background()); return err },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), dead) {
			t.Errorf("%s with no agent = %v, want an error naming %s", name, err, dead)
		}
		if errors.Is(err, registry.ErrNotFound) {
			t.Errorf("%s with no agent = %v, must not look like not found", name, err)
		}
	}
}

// TestCloseDropsIdleConnections: Close closes the keep-alive connections
// the registry holds to its agents (they would stay open until the HTTP
// client's idle timeout, 90 s), and the registry still works after it.
func TestCloseDropsIdleConnections(t *testing.T) {
	agent := consultest.Start(t)
	var proxies []*testenv.Proxy
	var addrs []string
	for range 2 { // two addresses of the agent: one connection pool each
		p := testenv.StartProxy(t, agent.Addr())
		proxies, addrs = append(proxies, p), append(addrs, p.Addr())
	}
	open := func() int { return proxies[0].Open() + proxies[1].Open() }
	r, err := consul.New(consul.WithAddrs(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	var _ io.Closer = r // what framework.Service closes
	ctx := ctxT(t)
	svc := greeter("closing", "1", "c-1")
	if err := r.Register(ctx, svc, registry.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	proxies[0].Cut() // reads fail over to the second address
	expectNodes(t, r, svc.Name, "c-1")
	if err := proxies[0].Restore(); err != nil {
		t.Fatal(err)
	}
	// Register again: to the agent that holds the registration, the first.
	if err := r.Register(ctx, svc, registry.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if a, b := proxies[0].Open(), proxies[1].Open(); a == 0 || b == 0 {
		t.Fatalf("connections kept alive after the calls: %d through the first address, %d through the second; want both", a, b)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	eventually(t, "the idle connections closed", func() error {
		if n := open(); n != 0 {
			return fmt.Errorf("%d connections to the agents still open", n)
		}
		return nil
	})
	expectNodes(t, r, svc.Name, "c-1") // a new connection
	if err := r.Deregister(ctx, svc); err != nil {
		t.Fatalf("Deregister after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestTimeout points the registry at a server that accepts connections and
// never answers: every call must still return, with an error, by itself.
func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	r := newRegistry(t, consul.WithAddrs(l.Addr().String()), consul.WithTimeout(300*time.Millisecond))
	errc := make(chan error, 1)
	go func() { errc <- r.Register(context.Background(), greeter("silent", "1", "s-1")) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), l.Addr().String()) {
			t.Fatalf("Register against a silent server = %v, want a deadline error naming the address", err)
		}
	case <-time.After(wait):
		t.Fatalf("Register against a silent server still blocked after %v", wait)
	}
}

func TestFailover(t *testing.T) {
	agent := consultest.Start(t)
	dead := deadAddr(t)
	r := newRegistry(t, consul.WithAddrs(dead, agent.Addr()))
	svc := greeter("failover", "1", "f-1")
	if err := r.Register(ctxT(t), svc, registry.WithTTL(30*time.Second)); err != nil {
		t.Fatalf("Register with the first address dead: %v", err)
	}
	expectNodes(t, r, "failover", "f-1")
	w, err := r.Watch(ctxT(t), registry.WithService("failover"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := r.Deregister(ctxT(t), svc); err != nil {
		t.Fatal(err)
	}
	res := next(t, w)
	if res.Action != registry.Delete || res.Service.Name != "failover" {
		t.Fatalf("watch event %s %s, want delete failover", res.Action, res.Service.Name)
	}

	// Both gone: the error names both.
	if err := agent.Stop(); err != nil {
		t.Fatal(err)
	}
	err = r.Register(ctxT(t), svc)
	if err == nil || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), agent.Addr()) {
		t.Fatalf("Register with every agent down = %v, want an error naming %s and %s", err, dead, agent.Addr())
	}
}

// next returns the watcher's next result, failing the test after wait.
func next(t testing.TB, w registry.Watcher) *registry.Result {
	t.Helper()
	type res struct {
		r   *registry.Result
		err error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := w.Next()
		ch <- res{r, err}
	}()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatalf("watcher: %v", x.err)
		}
		return x.r
	case <-time.After(wait):
		t.Fatalf("no watch event within %v", wait)
	}
	return nil
}

func expectEvent(t testing.TB, w registry.Watcher, action, name string, ids ...string) {
	t.Helper()
	slices.Sort(ids)
	r := next(t, w)
	// A watch of every service also sees the agent's own service "consul",
	// which goes and comes back when the agent restarts, at a moment that
	// depends on how fast it elects itself (a loaded machine is slow).
	for name != "consul" && r.Service != nil && r.Service.Name == "consul" {
		r = next(t, w)
	}
	if got := nodeIDs([]*registry.Service{r.Service}); r.Action != action || r.Service.Name != name || !slices.Equal(got, ids) {
		t.Fatalf("watch event %s %s %v, want %s %s %v", r.Action, r.Service.Name, got, action, name, ids)
	}
}

// TestWatchSurvivesAgentRestart: the agent goes away (losing its state, as
// a -dev agent does) and comes back; the watcher reports the node deleted,
// and created again once it is registered again, and keeps working.
func TestWatchSurvivesAgentRestart(t *testing.T) {
	agent := consultest.Start(t)
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))
	for _, mode := range []string{"all", "one"} {
		t.Run(mode, func(t *testing.T) {
			var opts []registry.WatchOption
			if mode == "one" {
				opts = append(opts, registry.WithService("restart"))
			}
			w, err := r.Watch(ctxT(t), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			svc := greeter("restart", "1", "r-1")
			if err := r.Register(ctxT(t), svc, registry.WithTTL(30*time.Second)); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, w, registry.Create, "restart", "r-1")

			if err := agent.Stop(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // let the watch fail and back off
			if err := agent.Restart(); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, w, registry.Delete, "restart", "r-1") // the new agent has nothing

			// The service's register loop brings it back.
			if err := r.Register(ctxT(t), svc, registry.WithTTL(30*time.Second)); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, w, registry.Create, "restart", "r-1")
			if err := r.Deregister(ctxT(t), svc); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, w, registry.Delete, "restart", "r-1")
		})
	}
}

// TestWatchSeesChangesWhileAgentDown: changes made while the watcher could
// not reach the agent (here: through another agent address that is the same
// agent, while the watcher's proxy is down) are reported once it reconnects.
func TestWatchSeesChangesWhileDisconnected(t *testing.T) {
	agent := consultest.Start(t)
	direct := newRegistry(t, consul.WithAddrs(agent.Addr()))

	// The watcher talks to the agent through a proxy we can cut.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := l.Addr().String()
	target, _ := url.Parse(agent.URL())
	proxy := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
	go proxy.Serve(l)
	watched := newRegistry(t, consul.WithAddrs(proxyAddr))

	a, b := greeter("gap", "1", "gap-a"), greeter("gap", "1", "gap-b")
	if err := direct.Register(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	w, err := watched.Watch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	proxy.Close() // the watcher's connection drops; new ones are refused
	if err := direct.Deregister(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	if err := direct.Register(ctxT(t), b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	l2, err := net.Listen("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	proxy2 := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
	go proxy2.Serve(l2)
	defer proxy2.Close()

	// a went and b came while the watcher was cut off: same version, so
	// one update holding b only.
	expectEvent(t, w, registry.Update, "gap", "gap-b")
}

// TestExpiredNodeLeavesGetService: a node whose TTL passes disappears from
// GetService and ListServices while Consul still holds it (critical).
func TestExpiredNodeLeavesGetService(t *testing.T) {
	agent := consultest.Start(t)
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))
	if err := r.Register(ctxT(t), greeter("expiring", "1", "e-1"), registry.WithTTL(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctxT(t), greeter("staying", "1", "s-1")); err != nil {
		t.Fatal(err)
	}
	expectNodes(t, r, "expiring")
	eventually(t, "ListServices without the expired service", func() error {
		list, err := r.ListServices(ctxT(t))
		if err != nil {
			return err
		}
		var names []string
		for _, s := range list {
			names = append(names, s.Name+"@"+s.Version)
		}
		// Consul's own service is listed too, as every service in the
		// catalog.
		if !slices.Equal(names, []string{"consul@", "staying@1"}) {
			return fmt.Errorf("ListServices = %v, want [consul@ staying@1]", names)
		}
		return nil
	})
	c, err := api.NewClient(&api.Config{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Agent().Service("e-1", nil); err != nil {
		t.Errorf("the expired node should still be in Consul (critical) until DeregisterCriticalServiceAfter: %v", err)
	}
}

// TestStaleBound: reads are stale; an answer from a server out of touch
// with its leader for longer than MaxStale is read again consistently; when
// that fails too, the stale answer is used and a warning logged once; with
// Consistent, every read goes to the leader.
func TestStaleBound(t *testing.T) {
	agent := consultest.Start(t)
	p := newRecorder(t, agent.Addr())
	if err := newRegistry(t, consul.WithAddrs(agent.Addr())).Register(ctxT(t), greeter("bound", "1", "b-1")); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	stale := newRegistry(t, consul.WithAddrs(p.URL), consul.WithLogger(log))
	consul.SetFallbackPause(stale, time.Hour) // the "paused" step must not depend on timing
	consistent := newRegistry(t, consul.WithAddrs(p.URL), consul.WithConsistentReads(), consul.WithLogger(log))
	steps := []struct {
		name             string
		r                *consul.Registry
		lag, leaderless  bool
		reads            []string
		logged, notInLog string
	}{
		{"fresh", stale, false, false, []string{"stale"}, "", "WARN"},
		{"too old, leader reachable", stale, true, false, []string{"stale", "consistent"}, "", "WARN"},
		{"too old, no leader", stale, true, true, []string{"stale", "consistent"}, "using the stale answer", ""},
		{"too old, no leader, paused", stale, true, true, []string{"stale"}, "", "WARN"},
		{"fresh again", stale, false, false, []string{"stale"}, "fresh again", ""},
		{"consistent mode", consistent, true, false, []string{"consistent"}, "", "WARN"},
	}
	for _, st := range steps {
		p.set(st.lag, st.leaderless)
		mark := len(logs.String())
		svcs, err := st.r.GetService(ctxT(t), "bound")
		if err != nil {
			t.Fatalf("%s: GetService: %v", st.name, err)
		}
		if got := nodeIDs(svcs); !slices.Equal(got, []string{"b-1"}) {
			t.Fatalf("%s: nodes %v", st.name, got)
		}
		if got := p.takeReads(); !slices.Equal(got, st.reads) {
			t.Errorf("%s: reads %v, want %v", st.name, got, st.reads)
		}
		out := logs.String()[mark:]
		if st.logged != "" && !strings.Contains(out, st.logged) {
			t.Errorf("%s: log lacks %q:\n%s", st.name, st.logged, out)
		}
		if st.notInLog != "" && strings.Contains(out, st.notInLog) {
			t.Errorf("%s: log has %q:\n%s", st.name, st.notInLog, out)
		}
	}
	// A blocking query (a watch) obeys the same bound.
	p.set(true, false)
	consul.SetFallbackPause(stale, 0)
	w, err := stale.Watch(ctxT(t), registry.WithService("bound"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// (The watch's first blocking query may follow at once.)
	if got := p.takeReads(); len(got) < 2 || !slices.Equal(got[:2], []string{"stale", "consistent"}) {
		t.Errorf("watch baseline: reads %v, want stale then consistent first", got)
	}
}
