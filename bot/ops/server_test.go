package ops_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/input"
)

// lister is a registry whose ListServices the test controls and counts.
type lister struct {
	calls atomic.Int32
	mu    sync.Mutex
	err   error
	hang  bool
}

func (l *lister) ListServices(ctx context.Context) ([]*registry.Service, error) {
	l.calls.Add(1)
	l.mu.Lock()
	err, hang := l.err, l.hang
	l.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return []*registry.Service{{Name: "a"}, {Name: "b"}}, nil
}

func (l *lister) String() string { return "fake" }

func (l *lister) set(err error, hang bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err, l.hang = err, hang
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

func TestRoutes(t *testing.T) {
	h := ops.NewServer(ops.WithMetrics(ops.NewMetrics()), ops.WithLogger(slog.New(slog.DiscardHandler))).Handler()
	tests := []struct {
		method, path string
		code         int
		body         string // contained
	}{
		{"GET", "/healthz", 200, "ok"},
		{"HEAD", "/healthz", 200, ""},
		{"GET", "/readyz", 200, "ready"},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"POST", "/healthz", 405, ""},
		{"DELETE", "/metrics", 405, ""},
		{"GET", "/", 404, ""},
		{"GET", "/debug/pprof/", 404, ""},
	}
	for _, tt := range tests {
		code, body := get(t, h, tt.method, tt.path)
		if code != tt.code || !strings.Contains(body, tt.body) {
			t.Errorf("%s %s = %d %q, want %d with %q", tt.method, tt.path, code, body, tt.code, tt.body)
		}
	}
	// Without metrics there is no /metrics.
	if code, _ := get(t, ops.NewServer().Handler(), "GET", "/metrics"); code != 404 {
		t.Errorf("/metrics without metrics: %d, want 404", code)
	}
}

func TestReadiness(t *testing.T) {
	slack, xmpp, irc := newStatus("slack"), newStatus("xmpp"), &silent{name: "irc"}
	reg := &lister{}
	srv := ops.NewServer(ops.WithInputs(slack, xmpp, irc), ops.WithRegistry(reg),
		ops.WithCacheFor(time.Nanosecond), ops.WithRegistryTimeout(200*time.Millisecond), ops.WithLogger(slog.New(slog.DiscardHandler)))
	h := srv.Handler()
	tests := []struct {
		name            string
		slackUp, xmppUp bool
		regErr          error
		regHang         bool
		code            int
		lines           []string
	}{
		{"everything up", true, true, nil, false, 200,
			[]string{"ready", "input slack: connected", "input xmpp: connected", "input irc: no status", "registry fake: reachable (2 services)"}},
		{"an input down", true, false, nil, false, 503,
			[]string{"not ready", "input slack: connected", "input xmpp: not connected"}},
		{"registry failing", true, true, errors.New("connection refused"), false, 503,
			[]string{"not ready", "registry fake: unreachable: connection refused"}},
		{"registry not answering", true, true, nil, true, 503,
			[]string{"not ready", "registry fake: unreachable: no answer within 200ms"}},
		{"back up", true, true, nil, false, 200, []string{"ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slack.up.Store(tt.slackUp)
			xmpp.up.Store(tt.xmppUp)
			reg.set(tt.regErr, tt.regHang)
			code, body := get(t, h, "GET", "/readyz")
			if code != tt.code {
				t.Errorf("code %d, want %d; body:\n%s", code, tt.code, body)
			}
			if !strings.HasPrefix(body, tt.lines[0]+"\n") {
				t.Errorf("body does not start with %q:\n%s", tt.lines[0], body)
			}
			for _, l := range tt.lines[1:] {
				if !strings.Contains(body, l) {
					t.Errorf("body lacks %q:\n%s", l, body)
				}
			}
		})
	}

	srv.SetStopping()
	if code, body := get(t, h, "GET", "/readyz"); code != 503 || !strings.Contains(body, "stopping") {
		t.Errorf("stopping: %d %q", code, body)
	}
	if code, _ := get(t, h, "GET", "/healthz"); code != 200 {
		t.Errorf("healthz while stopping: %d", code)
	}
}

func TestReadinessCachesTheRegistry(t *testing.T) {
	reg := &lister{}
	h := ops.NewServer(ops.WithRegistry(reg), ops.WithCacheFor(time.Hour), ops.WithLogger(slog.New(slog.DiscardHandler))).Handler()
	for range 5 {
		if code, body := get(t, h, "GET", "/readyz"); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if n := reg.calls.Load(); n != 1 {
		t.Errorf("5 probes asked the registry %d times, want 1", n)
	}
	// Concurrent probes too.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { get(t, h, "GET", "/readyz") })
	}
	wg.Wait()
	if n := reg.calls.Load(); n != 1 {
		t.Errorf("after concurrent probes: %d calls, want 1", n)
	}

	// A short cache: asked again once it has expired.
	reg2 := &lister{}
	h2 := ops.NewServer(ops.WithRegistry(reg2), ops.WithCacheFor(50*time.Millisecond), ops.WithLogger(slog.New(slog.DiscardHandler))).Handler()
	get(t, h2, "GET", "/readyz")
	time.Sleep(100 * time.Millisecond)
	get(t, h2, "GET", "/readyz")
	if n := reg2.calls.Load(); n != 2 {
		t.Errorf("after the cache expired: %d calls, want 2", n)
	}
}

func TestServerListens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := ops.NewServer(ops.WithRegistry(memory.New()), ops.WithMetrics(ops.NewMetrics()), ops.WithLogger(slog.New(slog.DiscardHandler)))
	if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx, "127.0.0.1:0"); err == nil {
		t.Error("second Start: no error")
	}
	base := "http://" + srv.Addr()
	fetch := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		rsp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer rsp.Body.Close()
		b, _ := io.ReadAll(rsp.Body)
		return rsp.StatusCode, string(b)
	}
	for _, p := range []string{ops.PathHealth, ops.PathReady, ops.PathMetrics} {
		if code, body := fetch(p); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	// The context ends: the bot is stopping, not ready, still alive.
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := fetch(ops.PathReady)
		if code == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d after the context ended", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := fetch(ops.PathHealth); code != 200 {
		t.Errorf("healthz while stopping: %d", code)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + ops.PathHealth); err == nil {
		t.Error("still answering after Shutdown")
	}
}

func TestServerBadAddress(t *testing.T) {
	busy := ops.NewServer(ops.WithLogger(slog.New(slog.DiscardHandler)))
	if err := busy.Start(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer busy.Shutdown(context.Background())
	tests := []struct{ addr, want string }{
		{"8080", "want host:port"},
		{"localhost", "want host:port"},
		{busy.Addr(), "address already in use"},
	}
	for _, tt := range tests {
		err := ops.NewServer(ops.WithLogger(slog.New(slog.DiscardHandler))).Start(context.Background(), tt.addr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start(%q) = %v, want an error with %q", tt.addr, err, tt.want)
		}
	}
}

// exclusiveInput is an input one instance at a time serves.
type exclusiveInput struct {
	name              string
	active, connected atomic.Bool
}

func (e *exclusiveInput) String() string  { return e.name }
func (e *exclusiveInput) Active() bool    { return e.active.Load() }
func (e *exclusiveInput) Connected() bool { return e.connected.Load() }
func (e *exclusiveInput) Stream(context.Context) (input.Conn, error) {
	return nil, errors.New("not used")
}

// TestReadinessHA: a standby instance is ready (it is ready to take over),
// and /readyz says which inputs this instance is active for.
func TestReadinessHA(t *testing.T) {
	xmpp := &exclusiveInput{name: "xmpp"}
	slack := &exclusiveInput{name: "slack"} // its Active is ignored: wrap it
	srv := ops.NewServer(ops.WithInputs(xmpp, statusOnly{slack}), ops.WithHA(), ops.WithLogger(slog.New(slog.DiscardHandler)))
	h := srv.Handler()
	tests := []struct {
		name                string
		active, up, slackUp bool
		code                int
		lines               []string
	}{
		{"standby", false, false, true, 200, []string{"ready",
			"input xmpp: standby (another instance is active; this one takes over if it stops)",
			"input slack: active (every instance), connected"}},
		{"active", true, true, true, 200, []string{"ready", "input xmpp: active (this instance), connected"}},
		{"active, down", true, false, true, 503, []string{"not ready", "input xmpp: active (this instance), not connected"}},
		{"slack down", false, false, false, 503, []string{"not ready", "input slack: active (every instance), not connected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xmpp.active.Store(tt.active)
			xmpp.connected.Store(tt.up)
			slack.connected.Store(tt.slackUp)
			code, body := get(t, h, "GET", "/readyz")
			if code != tt.code || !strings.HasPrefix(body, tt.lines[0]+"\n") {
				t.Errorf("%d %q, want %d %q", code, body, tt.code, tt.lines[0])
			}
			for _, l := range tt.lines[1:] {
				if !strings.Contains(body, l+"\n") {
					t.Errorf("body lacks %q:\n%s", l, body)
				}
			}
		})
	}
}

// statusOnly hides every method of an input but its status.
type statusOnly struct{ in *exclusiveInput }

func (s statusOnly) String() string                             { return s.in.String() }
func (s statusOnly) Connected() bool                            { return s.in.Connected() }
func (s statusOnly) Stream(context.Context) (input.Conn, error) { return nil, errors.New("not used") }
