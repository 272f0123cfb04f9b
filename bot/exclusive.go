package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/input"
)

// ErrLockLost is returned (wrapped) by Recv on a connection of an
// [Exclusive] input when this instance lost the input's lock: another
// instance of the bot takes the input over, this one stands by.
var ErrLockLost = errors.New("the input's lock was lost: another instance takes over")

// Locker hands out locks shared by the instances of a bot that run side by
// side (high availability): a lock held by one instance is held for all.
// cmd/microbot implements it with Consul sessions.
type Locker interface {
	// Lock blocks until this instance holds the lock named key, or ctx
	// ends. It retries failures to reach the shared store by itself.
	Lock(ctx context.Context, key string) (Lease, error)
}

// Lease is a lock held.
type Lease interface {
	// Lost is closed when the lock is lost (this instance could not renew
	// it, or it was given to another): the holder must stop at once.
	Lost() <-chan struct{}
	// Unlock releases the lock, so another instance may take it at once.
	Unlock(ctx context.Context) error
}

// DefaultStepDownGrace is how long the connection of an Exclusive input
// stays open after its lock was lost, for the replies of the commands
// running then; no new message is read meanwhile.
const DefaultStepDownGrace = time.Second

// Exclusive is an input that one instance of the bot at a time serves, such
// as an XMPP account's presence in its rooms: two instances in a room would
// both answer every message. Its Stream first takes the input's lock (and
// waits while another instance holds it: this instance stands by), then
// opens the input. When the lock is lost the connection stops reading at
// once, its Recv fails with [ErrLockLost], and it is closed after a short
// grace; the bot then waits for the lock again. Closing the connection
// releases the lock.
//
// It reports, besides Connected, whether this instance is the active one
// (Active), for readiness probes and metrics.
type Exclusive struct {
	in     input.Input
	locker Locker
	key    string
	opts   exclusiveOptions
	log    *slog.Logger

	active atomic.Bool
	mu     sync.Mutex
	last   *exclusiveConn // the last connection opened
}

// ExclusiveOption configures an Exclusive input.
type ExclusiveOption func(*exclusiveOptions)

type exclusiveOptions struct {
	hook   func(input string, active bool)
	grace  time.Duration
	logger *slog.Logger
}

// WithActiveHook sets a function told each time this instance becomes the
// active one for the input (true) and stops being it (false), for metrics.
func WithActiveHook(f func(input string, active bool)) ExclusiveOption {
	return func(o *exclusiveOptions) { o.hook = f }
}

// WithStepDownGrace sets how long a connection whose lock was lost stays
// open for the replies under way (default DefaultStepDownGrace).
func WithStepDownGrace(d time.Duration) ExclusiveOption {
	return func(o *exclusiveOptions) { o.grace = d }
}

// WithExclusiveLogger sets the logger (default slog.Default()).
func WithExclusiveLogger(l *slog.Logger) ExclusiveOption {
	return func(o *exclusiveOptions) { o.logger = l }
}

// NewExclusive returns in served under the lock key of l.
func NewExclusive(in input.Input, l Locker, key string, opts ...ExclusiveOption) *Exclusive {
	o := exclusiveOptions{grace: DefaultStepDownGrace}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.hook == nil {
		o.hook = func(string, bool) {}
	}
	return &Exclusive{in: in, locker: l, key: key, opts: o, log: o.logger.With("input", in.String(), "lock", key)}
}

// String names the input, as the input it wraps does.
func (e *Exclusive) String() string { return e.in.String() }

// Input returns the input it wraps.
func (e *Exclusive) Input() input.Input { return e.in }

// Active reports whether this instance is the one serving the input now.
func (e *Exclusive) Active() bool { return e.active.Load() }

// Connected reports whether this instance serves the input and its
// connection is up.
func (e *Exclusive) Connected() bool {
	if !e.active.Load() {
		return false
	}
	if s, ok := e.in.(input.StatusReporter); ok {
		return s.Connected()
	}
	return true
}

// WaitClosed waits until the input's last connection is closed and its
// lock released (the bot closes a connection in the background once its
// replies are out), or ctx ends: what a process stopping waits for before
// it lets go of its coordination with the other instances.
func (e *Exclusive) WaitClosed(ctx context.Context) error {
	e.mu.Lock()
	last := e.last
	e.mu.Unlock()
	if last == nil {
		return nil
	}
	select {
	case <-last.released:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Exclusive) setActive(v bool) {
	if e.active.Swap(v) != v {
		e.opts.hook(e.in.String(), v)
	}
}

// Stream takes the input's lock, waiting while another instance holds it,
// then opens the input. If the input does not open, the lock is released
// (another instance may have better luck) and the error returned.
func (e *Exclusive) Stream(ctx context.Context) (input.Conn, error) {
	// The last connection must be gone first: two at once would be two
	// presences of the one account (it closes within the grace once its
	// lock is lost).
	e.mu.Lock()
	last := e.last
	e.mu.Unlock()
	if last != nil {
		select {
		case <-last.gone:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.log.Info("standing by until this instance holds the input's lock")
	lease, err := e.locker.Lock(ctx, e.key)
	if err != nil {
		return nil, fmt.Errorf("%s: waiting for the lock %s: %w", e.in, e.key, err)
	}
	conn, err := e.in.Stream(ctx)
	if err != nil {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if uerr := lease.Unlock(uctx); uerr != nil {
			e.log.Warn("releasing the lock", "err", uerr)
		}
		return nil, err
	}
	e.log.Info("this instance is now the active one for the input")
	e.setActive(true)
	c := &exclusiveConn{e: e, inner: conn, lease: lease, closed: make(chan struct{}), gone: make(chan struct{}), released: make(chan struct{})}
	c.lost, c.markLost = context.WithCancel(context.Background())
	e.mu.Lock()
	e.last = c
	e.mu.Unlock()
	go c.watch()
	return c, nil
}

// exclusiveConn is a connection of an Exclusive input.
type exclusiveConn struct {
	e        *Exclusive
	inner    input.Conn
	lease    Lease
	lost     context.Context // cancelled when the lock is lost
	markLost context.CancelFunc

	closeOnce sync.Once
	closed    chan struct{} // Close was called
	goneOnce  sync.Once
	gone      chan struct{} // the input's connection is closed
	released  chan struct{} // closed, and the lock released
}

// closeInner closes the input's connection, once.
func (c *exclusiveConn) closeInner() error {
	var err error
	c.goneOnce.Do(func() {
		err = c.inner.Close()
		close(c.gone)
	})
	return err
}

// watch stops the connection when the lock is lost: reading at once,
// everything after the grace.
func (c *exclusiveConn) watch() {
	select {
	case <-c.lease.Lost():
	case <-c.closed:
		return
	}
	c.e.log.Warn("the input's lock was lost: this instance stops serving the input; another takes over")
	c.markLost()
	c.e.setActive(false)
	t := time.NewTimer(c.e.opts.grace)
	defer t.Stop()
	select {
	case <-t.C:
		if err := c.closeInner(); err != nil {
			c.e.log.Debug("closing the input", "err", err)
		}
	case <-c.closed:
	}
}

// Recv returns the next event, or an error wrapping ErrLockLost once the
// lock is lost.
func (c *exclusiveConn) Recv(ctx context.Context) (*input.Event, error) {
	if c.lost.Err() != nil {
		return nil, fmt.Errorf("%s: %w", c.e.in, ErrLockLost)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.lost, cancel)
	defer stop()
	ev, err := c.inner.Recv(rctx)
	if err != nil && c.lost.Err() != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%s: %w", c.e.in, ErrLockLost)
	}
	return ev, err
}

// Send sends on the input's connection.
func (c *exclusiveConn) Send(ctx context.Context, to *input.Event, reply *input.Reply) error {
	return c.inner.Send(ctx, to, reply)
}

// Close closes the input's connection, then releases the lock.
func (c *exclusiveConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.closeInner()
		c.e.setActive(false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if uerr := c.lease.Unlock(ctx); uerr != nil {
			c.e.log.Warn("releasing the input's lock (Consul frees it when this instance's presence expires)", "err", uerr)
		} else if c.lost.Err() == nil {
			c.e.log.Info("the input's lock was released")
		}
		c.markLost()
		close(c.released)
	})
	return err
}

// Skip passes the bot's Skip on to the input's connection, if it listens.
func (c *exclusiveConn) Skip(ev *input.Event) {
	if s, ok := c.inner.(Skipper); ok {
		s.Skip(ev)
	}
}

// ReportConnection passes the bot's reporter on to the input's connection,
// if it reconnects by itself.
func (c *exclusiveConn) ReportConnection(report func(up bool, err error)) {
	if r, ok := c.inner.(Reconnector); ok {
		r.ReportConnection(report)
	}
}

var (
	_ input.Input          = (*Exclusive)(nil)
	_ input.StatusReporter = (*Exclusive)(nil)
	_ Skipper              = (*exclusiveConn)(nil)
	_ Reconnector          = (*exclusiveConn)(nil)
)
