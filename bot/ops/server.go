package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input"
)

// DefaultShutdownTimeout bounds how long the running commands may take to
// finish and reply once a stop signal comes. It fits, with the
// deregistration, in the 30 s Kubernetes and systemd give by default.
const DefaultShutdownTimeout = 20 * time.Second

// Defaults of a Server.
const (
	DefaultRegistryTimeout = 2 * time.Second
	DefaultCacheFor        = 2 * time.Second
)

// Paths served by a Server.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathMetrics = "/metrics"
)

// Lister is what readiness needs of the registry.
type Lister interface {
	ListServices(ctx context.Context) ([]*registry.Service, error)
	String() string
}

// Server is the operations HTTP listener:
//
//	/healthz   200 "ok" while the process runs (liveness)
//	/readyz    200 when every input is connected (or, for an input one
//	           instance at a time serves, this instance stands by) and the
//	           registry answers, 503 otherwise and once the bot is stopping;
//	           the body says which check failed, and which inputs this
//	           instance is active for (readiness)
//	/metrics   the Metrics, in the Prometheus text format
//	/hooks/alertmanager   Prometheus Alertmanager's webhook, with
//	           WithAlertmanager (POST, bearer token: see AlertmanagerHook)
//
// Only GET and HEAD are served, but to the webhook. The registry check is a ListServices under
// a short timeout, its result kept for a moment so that frequent probes do
// not load the registry; the inputs are asked each time (it costs nothing).
type Server struct {
	opts     serverOptions
	handler  http.Handler
	stopping atomic.Bool

	regMu    sync.Mutex
	regAt    time.Time // when the registry was last asked
	regErr   error
	regCount int

	mu sync.Mutex
	hs *http.Server
	ln net.Listener
}

type serverOptions struct {
	inputs          []input.Input
	ha              bool
	reg             Lister
	metrics         *Metrics
	logger          *slog.Logger
	registryTimeout time.Duration
	cacheFor        time.Duration
	alertmanager    *AlertmanagerHook
}

// ServerOption configures a Server.
type ServerOption func(*serverOptions)

// WithInputs sets the inputs that must be connected for the bot to be
// ready. An input that does not implement input.StatusReporter counts as
// connected.
func WithInputs(ins ...input.Input) ServerOption {
	return func(o *serverOptions) { o.inputs = append(o.inputs, ins...) }
}

// WithHA says that the bot runs as one of several instances side by side:
// /readyz says of each input whether this instance is active for it.
func WithHA() ServerOption { return func(o *serverOptions) { o.ha = true } }

// Exclusive is implemented by inputs that one instance of the bot at a time
// serves (bot.Exclusive): Active reports whether this instance is the one.
type Exclusive interface {
	Active() bool
}

// WithRegistry sets the registry that must answer for the bot to be ready.
func WithRegistry(r Lister) ServerOption { return func(o *serverOptions) { o.reg = r } }

// WithMetrics sets the metrics served on /metrics (none: /metrics is 404).
func WithMetrics(m *Metrics) ServerOption { return func(o *serverOptions) { o.metrics = m } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) ServerOption { return func(o *serverOptions) { o.logger = l } }

// WithAlertmanager serves h, Prometheus Alertmanager's webhook, at
// PathAlertmanager (POST only).
func WithAlertmanager(h *AlertmanagerHook) ServerOption {
	return func(o *serverOptions) { o.alertmanager = h }
}

// WithRegistryTimeout bounds the registry check (default 2 s).
func WithRegistryTimeout(d time.Duration) ServerOption {
	return func(o *serverOptions) { o.registryTimeout = d }
}

// WithCacheFor sets how long the registry check's result is kept (default
// 2 s).
func WithCacheFor(d time.Duration) ServerOption { return func(o *serverOptions) { o.cacheFor = d } }

// NewServer returns a Server; Start makes it listen.
func NewServer(opts ...ServerOption) *Server {
	o := serverOptions{registryTimeout: DefaultRegistryTimeout, cacheFor: DefaultCacheFor}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.registryTimeout <= 0 {
		o.registryTimeout = DefaultRegistryTimeout
	}
	s := &Server{opts: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET "+PathReady, func(w http.ResponseWriter, r *http.Request) {
		ready, report := s.Check(r.Context())
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		plain(w, code, report)
	})
	if m := o.metrics; m != nil {
		mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(o.logger.Handler(), slog.LevelError),
			Timeout:  10 * time.Second,
		}))
	}
	if o.alertmanager != nil {
		mux.Handle(PathAlertmanager, o.alertmanager) // it answers other methods 405 itself
	}
	s.handler = mux
	return s
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, body) //nolint:errcheck // the prober went away
}

// Handler returns the server's HTTP handler (to mount it elsewhere, or to
// test it).
func (s *Server) Handler() http.Handler { return s.handler }

// SetStopping makes /readyz answer 503 from now on: the bot is stopping
// and should get no more traffic.
func (s *Server) SetStopping() { s.stopping.Store(true) }

// Check runs the readiness checks. It returns whether the bot is ready and
// a report, one line per check.
func (s *Server) Check(ctx context.Context) (bool, string) {
	var b strings.Builder
	ready := true
	fail := func(format string, a ...any) {
		ready = false
		fmt.Fprintf(&b, format+"\n", a...)
	}
	if s.stopping.Load() {
		fail("stopping: the bot is shutting down")
	}
	for _, in := range s.opts.inputs {
		role := ""
		if ex, ok := in.(Exclusive); ok {
			if !ex.Active() {
				// Standing by is this instance's job: it is ready to take
				// over.
				fmt.Fprintf(&b, "input %s: standby (another instance is active; this one takes over if it stops)\n", in)
				continue
			}
			role = "active (this instance), "
		} else if s.opts.ha {
			role = "active (every instance), "
		}
		st, ok := in.(input.StatusReporter)
		switch {
		case !ok:
			fmt.Fprintf(&b, "input %s: %sno status (counted as connected)\n", in, role)
		case st.Connected():
			fmt.Fprintf(&b, "input %s: %sconnected\n", in, role)
		default:
			fail("input %s: %snot connected", in, role)
		}
	}
	if s.opts.reg != nil {
		n, err := s.registryState(ctx)
		if err != nil {
			fail("registry %s: unreachable: %v", s.opts.reg, err)
		} else {
			fmt.Fprintf(&b, "registry %s: reachable (%d services)\n", s.opts.reg, n)
		}
	}
	head := "ready\n"
	if !ready {
		head = "not ready\n"
	}
	return ready, head + b.String()
}

// registryState lists the services, or returns the last result if it is
// recent enough. Concurrent probes wait for one another, so the registry
// sees one call at a time.
func (s *Server) registryState(ctx context.Context) (int, error) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if !s.regAt.IsZero() && time.Since(s.regAt) < s.opts.cacheFor {
		return s.regCount, s.regErr
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.registryTimeout)
	defer cancel()
	list, err := s.opts.reg.ListServices(cctx)
	if err != nil && ctx.Err() != nil {
		return 0, err // the prober went away: keep nothing
	}
	if err != nil && cctx.Err() != nil {
		err = fmt.Errorf("no answer within %s: %w", s.opts.registryTimeout, err)
	}
	s.regAt, s.regErr, s.regCount = time.Now(), err, len(list)
	return s.regCount, s.regErr
}

// Start listens on addr (host:port; port 0 picks a free one) and serves in
// the background until Shutdown. Once ctx is done, /readyz answers 503
// (the bot is stopping) while /healthz and /metrics go on answering.
func (s *Server) Start(ctx context.Context, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("ops: HTTP address %q: want host:port (e.g. 127.0.0.1:8080, or :8080 for every interface): %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hs != nil {
		return errors.New("ops: server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("ops: HTTP listener: %w", err)
	}
	s.serveLocked(ctx, ln)
	return nil
}

// serveLocked serves on ln in the background until Shutdown (s.mu held).
func (s *Server) serveLocked(ctx context.Context, ln net.Listener) {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.logger.Handler(), slog.LevelDebug),
	}
	s.hs, s.ln = hs, ln
	context.AfterFunc(ctx, s.SetStopping)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.logger.Error("ops HTTP listener failed", "err", err)
		}
	}()
	paths := []string{PathHealth, PathReady, PathMetrics}
	if s.opts.alertmanager != nil {
		paths = append(paths, PathAlertmanager)
	}
	s.opts.logger.Info("ops HTTP listener started", "address", ln.Addr().String(), "paths", paths)
}

// Addr returns the address the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the listener and waits for the requests being served,
// until ctx is done; then it closes the connections still open (an answer
// blocked on a caller that does not read would otherwise hold its
// connection until the write timeout) and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetStopping()
	s.mu.Lock()
	hs := s.hs
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	err := hs.Shutdown(ctx)
	if err != nil {
		_ = hs.Close()
	}
	return err
}
