package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/framework/selector"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/internal/testenv"
)

type Request struct {
	Name string `json:"name"`
}

type Response struct {
	Msg string `json:"msg"`
}

type Say struct{ hits atomic.Int32 }

func (s *Say) Hello(ctx context.Context, req *Request, rsp *Response) error {
	s.hits.Add(1)
	rsp.Msg = "Hello " + req.Name
	return nil
}

const svcName = "go.micro.srv.greeter"

func startServer(t *testing.T, r registry.Registry) (*server.Server, *Say) {
	t.Helper()
	h := &Say{}
	s, err := server.New(server.WithName(svcName), server.WithVersion("1.0.0"), server.WithRegistry(r))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(h); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx) //nolint:errcheck
	})
	return s, h
}

func TestCallThroughRegistry(t *testing.T) {
	r := memory.New()
	s, _ := startServer(t, r)
	c, err := client.New(client.WithRegistry(r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var rsp Response
	if err := c.Call(context.Background(), svcName, "Say.Hello", &Request{Name: "John"}, &rsp); err != nil || rsp.Msg != "Hello John" {
		t.Fatalf("Call = %q, %v", rsp.Msg, err)
	}

	svcs, err := r.GetService(context.Background(), svcName)
	if err != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
		t.Fatalf("registered: %+v, %v", svcs, err)
	}
	got := svcs[0]
	if got.Version != "1.0.0" || got.Nodes[0].Address != s.Address() || !strings.HasPrefix(got.Nodes[0].ID, svcName+"-") {
		t.Errorf("registered node %+v of version %s, want address %s", got.Nodes[0], got.Version, s.Address())
	}
	var eps []string
	for _, e := range got.Endpoints {
		eps = append(eps, e.Name)
	}
	if strings.Join(eps, ",") != "Debug.Health,Say.Hello" {
		t.Errorf("registered endpoints %v", eps)
	}

	// Stop deregisters: the service is then unknown, once the selector's
	// watch has seen it go (a call made before may still reach the stopped
	// node's address and fail).
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the service is unknown after Stop", func() bool {
		err = c.Call(context.Background(), svcName, "Say.Hello", &Request{}, &rsp)
		var e *rpcerr.Error
		return errors.As(err, &e) && e.Code == 404 && e.Detail == "service go.micro.srv.greeter: not found"
	})
}

func TestClientErrors(t *testing.T) {
	r := memory.New()
	c, err := client.New(client.WithRegistry(r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	noRegistry, err := client.New()
	if err != nil {
		t.Fatal(err)
	}
	dead := deadAddr(t)
	tests := []struct {
		name    string
		client  *client.Client
		service string
		opts    []client.CallOption
		code    int32
		detail  string
	}{
		{"unknown service", c, "go.micro.srv.x", nil, 404, "service go.micro.srv.x: not found"},
		{"no registry", noRegistry, "go.micro.srv.x", nil, 500, "the client has no registry or selector"},
		{"dead address", c, "go.micro.srv.x", []client.CallOption{client.WithAddress(dead)}, 503,
			"call to go.micro.srv.x Say.Hello: node " + dead + " unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.client.Call(context.Background(), tt.service, "Say.Hello", &Request{}, nil, tt.opts...)
			var e *rpcerr.Error
			if !errors.As(err, &e) || e.Code != tt.code || !strings.Contains(e.Detail, tt.detail) || e.ID != "go.micro.client" {
				t.Errorf("error = %#v, want %d containing %q", err, tt.code, tt.detail)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = c.Call(ctx, "x", "Say.Hello", &Request{}, nil)
	if !errors.Is(err, rpcerr.Timeout("", "")) || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("with a cancelled context: %v", err)
	}
}

// deadAddr returns a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangup serves a node that reads each request and drops the connection
// without answering: the request reached a server, nobody knows with what
// effect. It counts the requests.
func hangup(t *testing.T) (string, *atomic.Int32) {
	var n atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) //nolint:errcheck
		n.Add(1)
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	})}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &n
}

// ordered is a selector that yields fixed nodes in order, so a test knows
// which node a call tries first. It records Mark.
type ordered struct {
	nodes  []*registry.Node
	mu     sync.Mutex
	marked []string
}

func (o *ordered) Select(ctx context.Context, service string) (selector.Next, error) {
	i := 0
	return func() (*registry.Node, error) {
		if i == len(o.nodes) {
			return nil, selector.ErrNoneAvailable
		}
		i++
		return o.nodes[i-1], nil
	}, nil
}

func (o *ordered) Mark(service string, node *registry.Node, err error) {
	if err != nil {
		o.mu.Lock()
		o.marked = append(o.marked, node.Address)
		o.mu.Unlock()
	}
}
func (o *ordered) Close() error   { return nil }
func (o *ordered) String() string { return "ordered" }

func TestRetries(t *testing.T) {
	live, say := startServer(t, nil)
	dropper, drops := hangup(t)
	dead := deadAddr(t)
	node := func(a string) *registry.Node { return &registry.Node{ID: a, Address: a} }

	tests := []struct {
		name      string
		first     string
		opts      []client.CallOption
		wantErr   string // "" for success on the live node
		wantDrops int32
	}{
		{"dead node is retried on another", dead, nil, "", 0},
		{"call that reached a server is not retried", dropper, nil, "not retried: the request may have reached the server", 1},
		{"idempotent call is retried", dropper, []client.CallOption{client.WithIdempotent()}, "", 1},
		{"no retries allowed", dead, []client.CallOption{client.WithRetries(0)}, "unreachable", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := &ordered{nodes: []*registry.Node{node(tt.first), node(live.Address())}}
			c, err := client.New(client.WithSelector(sel), client.WithDefaultCallOptions(client.WithRetries(2)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			drops.Store(0)
			say.hits.Store(0)
			var rsp Response
			err = c.Call(context.Background(), svcName, "Say.Hello", &Request{Name: "R"}, &rsp, tt.opts...)
			switch {
			case tt.wantErr == "" && (err != nil || rsp.Msg != "Hello R" || say.hits.Load() != 1):
				t.Errorf("Call = %q, %v (live node hit %d times); want an answer from the live node", rsp.Msg, err, say.hits.Load())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || say.hits.Load() != 0):
				t.Errorf("Call = %v (live node hit %d times); want %q and no retry", err, say.hits.Load(), tt.wantErr)
			}
			if drops.Load() != tt.wantDrops {
				t.Errorf("the dropping node got %d requests, want %d", drops.Load(), tt.wantDrops)
			}
			if len(sel.marked) != 1 || sel.marked[0] != tt.first {
				t.Errorf("marked %v, want the failed node %s marked once", sel.marked, tt.first)
			}
		})
	}
}

// TestNew: options are checked when the client is built, and the defaults
// of calls given to New apply to every call.
func TestNew(t *testing.T) {
	for _, tt := range []struct {
		opt  client.Option
		want string
	}{
		{client.WithDefaultCallOptions(client.WithContentType("text/plain")), `content type "text/plain": unsupported`},
		{client.WithDefaultCallOptions(client.WithRetries(-1)), "negative retries"},
		{client.WithDefaultCallOptions(client.WithRequestTimeout(-time.Second)), "negative request timeout"},
		{client.WithPoolSize(-1), "negative pool size"},
	} {
		if c, err := client.New(tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) || c != nil {
			t.Errorf("New = %v, %v; want an error containing %q", c, err, tt.want)
		}
	}

	r := memory.New()
	startServer(t, r)
	c, err := client.New(client.WithRegistry(r), client.WithDefaultCallOptions(client.WithRequestTimeout(2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Call(context.Background(), svcName, "Say.Hello", &Request{}, nil); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if got := c.Options().RequestTimeout; got != 2*time.Second {
		t.Errorf("RequestTimeout = %v", got)
	}
	if err := c.Call(context.Background(), svcName, "Say.Nope", &Request{}, nil, client.WithAddress("127.0.0.1:1"), client.WithRetries(0)); err == nil {
		t.Error("a call's own options did not override the defaults")
	}
}

// TestEveryDialect calls a microbot server through nodes that say they are
// microbot's, go-micro v1's or go-micro v0.x's, or nothing, and with
// go-micro's old framings forced: the server answers each, successes and
// errors alike.
func TestEveryDialect(t *testing.T) {
	s, h := startServer(t, nil)
	c, err := client.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range []struct {
		name string
		md   map[string]string
		ct   string
	}{
		{"microbot", map[string]string{"content_types": "application/json"}, "application/json"},
		{"go-micro v1", map[string]string{"protocol": "mucp", "server": "mucp"}, "application/json"},
		{"go-micro v0.x json", map[string]string{"server": "rpc"}, "application/json"},
		{"go-micro v0.x protobuf", map[string]string{"server": "rpc"}, "application/protobuf"},
		{"none", nil, "application/json"},
		{"forced json-rpc", nil, "application/json-rpc"},
		{"forced proto-rpc", nil, "application/proto-rpc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			node := client.WithNode(&registry.Node{ID: "n", Address: s.Address(), Metadata: tt.md})
			ctx := context.Background()
			if tt.ct != "application/protobuf" && tt.ct != "application/proto-rpc" {
				before := h.hits.Load()
				var rsp Response
				if err := c.Call(ctx, svcName, "Say.Hello", &Request{Name: "John"}, &rsp, node, client.WithContentType(tt.ct)); err != nil || rsp.Msg != "Hello John" {
					t.Fatalf("Say.Hello = %q, %v", rsp.Msg, err)
				}
				if h.hits.Load() != before+1 {
					t.Fatalf("ran %d times", h.hits.Load()-before)
				}
			}
			var health server.HealthResponse
			if err := c.Call(ctx, svcName, "Debug.Health", &server.HealthRequest{}, &health, node, client.WithContentType(tt.ct)); err != nil || health.Status != "ok" {
				t.Fatalf("Debug.Health = %+v, %v", health, err)
			}
			err := c.Call(ctx, svcName, "Say.Nothing", &server.HealthRequest{}, nil, node, client.WithContentType(tt.ct))
			var e *rpcerr.Error
			if !errors.As(err, &e) || e.Code != 404 || !strings.Contains(e.Detail, "unknown endpoint Say.Nothing") {
				t.Fatalf("unknown endpoint: %v", err)
			}
		})
	}
}
