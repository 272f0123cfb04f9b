package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/internal/node"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/selector"
	"github.com/microbot/microbot/framework/server"
)

// Service is a named service: a server for its handlers, a client for its
// calls, and a registry that both use. NewService builds it whole; nothing
// changes its configuration afterwards.
type Service struct {
	opts   Options
	reg    registry.Registry
	built  registry.Registry // reg if NewService built it (not the caller's); closed by Stop
	broker *lazyBroker
	sel    selector.Selector // built here for client; closed by Stop
	client *client.Client
	server *server.Server

	mu      sync.Mutex
	stop    context.CancelFunc // ends the re-registration loop
	stopped chan struct{}      // closed when the loop has ended
	ended   bool               // Stop was called: the service cannot start again
}

// NewService builds a service from opts (and from the command line given
// with WithArgs): its registry (given, or built from the table of
// registries), its selector, client and server. It fails, changing nothing,
// if a name is not in its table, a value is out of range or the registry
// cannot be built; after --help or --version on the command line it
// returns ErrHelp. Register handlers on Server(), then Run.
func NewService(opts ...Option) (*Service, error) {
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	if o.Args != nil {
		flagOpts, err := parseArgs(o)
		if err != nil {
			return nil, err
		}
		for _, f := range flagOpts {
			f(&o)
		}
	}
	switch {
	case o.RegisterTTL < 0:
		return nil, fmt.Errorf("negative register TTL %v", o.RegisterTTL)
	case o.RegisterInterval < 0:
		return nil, fmt.Errorf("negative register interval %v", o.RegisterInterval)
	case o.BrokerConnectTimeout < 0:
		return nil, fmt.Errorf("negative broker connect timeout %v", o.BrokerConnectTimeout)
	}
	strategy, err := selectors.Get(o.Selector)
	if err != nil {
		return nil, err
	}
	reg, built := o.Registry, registry.Registry(nil)
	if reg == nil {
		if reg, err = newRegistry(o.RegistryName, registryConfig{addrs: o.RegistryAddrs, sharedDir: o.RegistrySharedDir}); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		built = reg
	}
	b := o.Broker
	if b != nil && o.BrokerFormat != "" {
		closeRegistry(built) //nolint:errcheck // never used: nothing to stop
		return nil, fmt.Errorf("broker: format %q given for a broker set in code (WithBroker): give the broker its format where it is built", o.BrokerFormat)
	}
	if b == nil {
		if b, err = newBroker(o.BrokerName, brokerConfig{
			addrs: o.BrokerAddrs, format: o.BrokerFormat, reg: reg, registerTTL: o.RegisterTTL, registerInterval: o.RegisterInterval,
		}); err != nil {
			closeRegistry(built) //nolint:errcheck // never used: nothing to stop
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	lb := &lazyBroker{Broker: b, timeout: o.BrokerConnectTimeout}
	sel := selector.New(reg, selector.WithStrategy(strategy()))
	cl, err := client.New(
		client.WithBroker(lb),
		client.WithSelector(sel),
		client.WithDefaultCallOptions(
			client.WithRetries(o.ClientRetries),
			client.WithRequestTimeout(o.ClientRequestTimeout),
		),
		client.WithCallWrappers(o.CallWrappers...),
	)
	if err != nil {
		sel.Close()          //nolint:errcheck // never used: nothing to stop
		closeRegistry(built) //nolint:errcheck
		return nil, err
	}
	srv, err := server.New(
		server.WithName(o.Name),
		server.WithVersion(o.Version),
		server.WithID(o.ID),
		server.WithAddress(o.Address),
		server.WithAdvertise(o.Advertise),
		server.WithMetadata(o.Metadata),
		server.WithRegistry(reg),
		server.WithRegisterTTL(o.RegisterTTL),
		server.WithMaxBodySize(o.MaxBodySize),
		server.WithMaxConns(o.MaxConns),
		server.WithBroker(lb),
	)
	if err != nil {
		cl.Close()           //nolint:errcheck // never used: nothing to stop
		sel.Close()          //nolint:errcheck
		closeRegistry(built) //nolint:errcheck
		return nil, err
	}
	o.Registry, o.Broker, o.Metadata = reg, b, maps.Clone(o.Metadata)
	return &Service{opts: o, reg: reg, built: built, broker: lb, sel: sel, client: cl, server: srv}, nil
}

// closeRegistry closes r if it is not nil and has a Close method (the local
// registry stops its background work with it, the consul registry closes
// its idle connections to the agents).
func closeRegistry(r registry.Registry) error {
	if c, ok := r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Options returns a copy of the options the service was built from, with
// the registry it uses.
func (s *Service) Options() Options {
	o := s.opts
	o.Metadata = maps.Clone(o.Metadata)
	return o
}

// Name returns the service's name.
func (s *Service) Name() string { return s.opts.Name }

// Client returns the service's client, which finds nodes in its registry.
func (s *Service) Client() *client.Client { return s.client }

// Server returns the service's server, to register handlers on.
func (s *Service) Server() *server.Server { return s.server }

// Registry returns the service's registry.
func (s *Service) Registry() registry.Registry { return s.reg }

// Broker returns the service's broker, which connects on first use (see
// Options.Broker).
func (s *Service) Broker() broker.Broker { return s.broker }

// Start starts the server, registers the node, and keeps registering it
// every RegisterInterval until Stop. A failed registration is logged and
// tried again on the next interval. ctx bounds the start only. A service
// starts once: Start fails after Stop.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended:
		return errors.New("service stopped: it cannot start again (build a new one)")
	case s.stop != nil:
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
	node.Renew(ctx, every, slog.Default(), s.server.Register, "service", s.Name())
}

// Stop ends the service: it deregisters the node, stops the
// re-registration and the server, waits for in-flight requests until ctx is
// done, disconnects the broker, and then releases what NewService built for
// the client (the selector's registry watch and the idle connections), so
// calls through Client() fail afterwards and Start does too; last it closes
// the registry if NewService built it (a registry given with WithRegistry
// stays open: it is the caller's). Stop a service that was never started as
// well once done with its client or broker. Only the first Stop does
// anything.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	stop, stopped, ended := s.stop, s.stopped, s.ended
	s.stop, s.stopped, s.ended = nil, nil, true
	s.mu.Unlock()
	if ended {
		return nil
	}
	var err error
	if stop != nil {
		stop()
		<-stopped
		err = s.server.Stop(ctx) // the handlers draining may still call out
	}
	// In this order: the broker may deregister its subscribers and the
	// selector stops its watch before the registry closes.
	err = errors.Join(err, s.broker.Disconnect(ctx), s.client.Close(), s.sel.Close())
	return errors.Join(err, closeRegistry(s.built))
}

// Run starts the service and serves until SIGINT, SIGTERM or the end of
// ctx; then it deregisters, drains in-flight requests (bounded by
// StopTimeout) and returns nil, or the error of stopping.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		return err
	}
	slog.Info("service started", "service", s.Name(), "address", s.server.Address(), "registry", s.reg)
	<-ctx.Done()
	cancel() // a second signal kills the process at once
	slog.Info("service stopping", "service", s.Name())
	sctx, scancel := context.WithTimeout(context.Background(), s.opts.StopTimeout)
	defer scancel()
	return s.Stop(sctx)
}
