package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/selector"
	"github.com/microbot/microbot/framework/server"

	// The registries every service can pick by flag.
	_ "github.com/microbot/microbot/framework/registry/consul"
	_ "github.com/microbot/microbot/framework/registry/local"
	_ "github.com/microbot/microbot/framework/registry/memory"
)

// Service is a named service: a server for its handlers, a client for its
// calls, and a registry that both use, configured by options and flags.
type Service struct {
	mu      sync.Mutex
	opts    Options
	dirty   bool // options changed since the last setup
	reg     registry.Registry
	regKey  string // plugin name and addresses reg was built from
	sel     selector.Selector
	selKey  string // strategy and registry sel was built for
	client  *client.Client
	server  *server.Server
	stop    context.CancelFunc // ends the re-registration loop
	stopped chan struct{}      // closed when the loop has ended
}

// NewService returns a service configured by opts. Call Init to read the
// command line, register handlers on Server(), then Run.
func NewService(opts ...Option) *Service {
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	return &Service{opts: o, dirty: true, client: client.New(), server: server.New()}
}

// Init applies opts, then parses the command line (os.Args) with the
// framework's flags and those added with ExtraFlags, configures the service
// from them (see InitCLI) and runs the Action functions. After --help it
// exits the process with status 0, as a command does.
func (s *Service) Init(opts ...Option) error {
	s.mu.Lock()
	for _, f := range opts {
		f(&s.opts)
	}
	s.dirty = true
	o := s.opts
	s.mu.Unlock()

	ran := false
	app := &cli.App{
		Name:            filepath.Base(os.Args[0]),
		Usage:           o.Name,
		Version:         o.Version,
		Flags:           append(Flags(), o.Flags...),
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			ran = true
			if err := s.InitCLI(c); err != nil {
				return err
			}
			for _, a := range o.Actions {
				if err := a(c); err != nil {
					return err
				}
			}
			return nil
		},
	}
	if err := app.Run(os.Args); err != nil {
		return err
	}
	if !ran { // --help or --version was shown
		os.Exit(0)
	}
	return nil
}

// InitCLI configures the service from a parsed command line whose flags
// include Flags(). A flag given on the command line or in its environment
// variable overrides the option set in code; a flag left unset does not.
func (s *Service) InitCLI(c *cli.Context) error {
	s.mu.Lock()
	o := s.opts
	s.mu.Unlock()
	set := func(name string) bool { return c.IsSet(name) }

	if set(FlagRegistry) || set(FlagRegistryAddress) {
		o.Registry = nil // a registry named on the command line wins over one set in code
		if set(FlagRegistry) {
			o.RegistryName = c.String(FlagRegistry)
		}
		o.RegistryAddrs = splitList(c.String(FlagRegistryAddress))
	}
	if set(FlagRegisterTTL) {
		o.RegisterTTL = c.Generic(FlagRegisterTTL).(*Duration).D
	}
	if set(FlagRegisterInterval) {
		o.RegisterInterval = c.Generic(FlagRegisterInterval).(*Duration).D
	}
	if set(FlagSelector) {
		o.Selector = c.String(FlagSelector)
	}
	if set(FlagClientRetries) {
		o.ClientRetries = c.Int(FlagClientRetries)
	}
	if set(FlagClientRequestTimeout) {
		o.ClientRequestTimeout = c.Generic(FlagClientRequestTimeout).(*Duration).D
	}
	for name, field := range map[string]*string{
		FlagServerName: &o.Name, FlagServerVersion: &o.Version, FlagServerID: &o.ID,
		FlagServerAddress: &o.Address, FlagServerAdvertise: &o.Advertise,
	} {
		if set(name) {
			*field = c.String(name)
		}
	}
	if set(FlagServerMetadata) {
		md := map[string]string{}
		for k, v := range o.Metadata {
			md[k] = v
		}
		for _, kv := range c.StringSlice(FlagServerMetadata) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("--%s %q: want key=value", FlagServerMetadata, kv)
			}
			md[k] = v
		}
		o.Metadata = md
	}
	if set(FlagServerMaxBodySize) {
		o.MaxBodySize = c.Generic(FlagServerMaxBodySize).(*Size).N
	}
	if set(FlagServerMaxConns) {
		if o.MaxConns = c.Int(FlagServerMaxConns); o.MaxConns <= 0 {
			return fmt.Errorf("--%s %d: want a positive number of connections", FlagServerMaxConns, o.MaxConns)
		}
	}

	s.mu.Lock()
	s.opts, s.dirty = o, true
	s.mu.Unlock()
	return s.setup()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// setup builds the registry if needed and hands the options to the client
// and server. It does nothing if the options have not changed.
func (s *Service) setup() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	o := s.opts
	if _, err := selector.StrategyByName(o.Selector); err != nil {
		return err
	}
	reg := o.Registry
	if reg == nil {
		key := o.RegistryName + "|" + strings.Join(o.RegistryAddrs, ",")
		if s.reg != nil && s.regKey == key {
			reg = s.reg
		} else {
			var err error
			reg, err = registry.New(o.RegistryName, registry.Addrs(o.RegistryAddrs...))
			if err != nil {
				return fmt.Errorf("registry: %w", err)
			}
			s.regKey = key
		}
	}
	s.reg = reg
	if key := fmt.Sprintf("%s|%p", o.Selector, reg); s.sel == nil || s.selKey != key {
		sel, err := selector.NewByName(o.Selector, reg)
		if err != nil {
			return err
		}
		if s.sel != nil {
			defer s.sel.Close() //nolint:errcheck // after the client has the new one
		}
		s.sel, s.selKey = sel, key
	}
	s.client.Init(
		client.Registry(reg),
		client.Selector(s.sel),
		client.Retries(o.ClientRetries),
		client.RequestTimeout(o.ClientRequestTimeout),
	)
	s.server.Init(
		server.Name(o.Name),
		server.Version(o.Version),
		server.ID(o.ID),
		server.Address(o.Address),
		server.Advertise(o.Advertise),
		server.Metadata(o.Metadata),
		server.Registry(reg),
		server.RegisterTTL(o.RegisterTTL),
		server.MaxBodySize(o.MaxBodySize),
		server.WithMaxConns(o.MaxConns),
	)
	s.dirty = false
	return nil
}

// Options returns a copy of the service's options.
func (s *Service) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// Name returns the service's name.
func (s *Service) Name() string { return s.Options().Name }

// Client returns the service's client, configured with its registry.
func (s *Service) Client() *client.Client {
	if err := s.setup(); err != nil {
		slog.Error("service setup failed", "service", s.Name(), "err", err)
	}
	return s.client
}

// Server returns the service's server, to register handlers on.
func (s *Service) Server() *server.Server { return s.server }

// Registry returns the service's registry (nil if it could not be built;
// Init, InitCLI and Start return that error).
func (s *Service) Registry() registry.Registry {
	if err := s.setup(); err != nil {
		slog.Error("service setup failed", "service", s.Name(), "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reg
}

// Start starts the server, registers the node, and keeps registering it
// every RegisterInterval until Stop. A failed registration is logged and
// tried again on the next interval. ctx bounds the start only.
func (s *Service) Start(ctx context.Context) error {
	if err := s.setup(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return errors.New("service already started")
	}
	if err := s.server.Start(ctx); err != nil {
		return err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	s.stop, s.stopped = stop, make(chan struct{})
	go s.reregister(loopCtx, s.opts.RegisterInterval, s.stopped)
	return nil
}

// reregister registers the node every interval until ctx is done.
func (s *Service) reregister(ctx context.Context, every time.Duration, done chan<- struct{}) {
	defer close(done)
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		err := s.server.Register(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			slog.Warn("register failed; will retry", "service", s.Name(), "in", every, "err", err)
			failing = true
		case err == nil && failing:
			slog.Info("registered again", "service", s.Name())
			failing = false
		}
	}
}

// Stop deregisters the node, stops the re-registration and the server, and
// waits for in-flight requests until ctx is done.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	stop, stopped := s.stop, s.stopped
	s.stop, s.stopped = nil, nil
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	<-stopped
	return s.server.Stop(ctx)
}

// Run starts the service and serves until SIGINT, SIGTERM or the end of the
// Context option; then it deregisters, drains in-flight requests (bounded
// by StopTimeout) and returns nil, or the error of stopping.
func (s *Service) Run() error {
	o := s.Options()
	ctx, cancel := signal.NotifyContext(o.Context, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		return err
	}
	slog.Info("service started", "service", o.Name, "address", s.server.Address(), "registry", s.Registry())
	<-ctx.Done()
	cancel() // a second signal kills the process at once
	slog.Info("service stopping", "service", o.Name)
	sctx, scancel := context.WithTimeout(context.Background(), o.StopTimeout)
	defer scancel()
	return s.Stop(sctx)
}
