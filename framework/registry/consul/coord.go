package consul

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/internal/node"
	"github.com/microbot/microbot/internal/backoff"
)

// Defaults of a Coordinator.
const (
	// DefaultPresenceTTL is the TTL of the check a process's locks hang on:
	// a process that stops passing it (it died, froze, or lost its Consul
	// agent) loses its locks this long after its last pass at most, so
	// another process takes over about DefaultPresenceTTL + DefaultLockDelay
	// after a crash. The check is passed every fifth of it.
	DefaultPresenceTTL = 5 * time.Second
	// DefaultLockDelay is Consul's lock-delay of the presence session: after
	// the session ends without releasing its locks (its check went
	// critical), nobody may take them for this long, a margin for a holder
	// that has not noticed yet. Consul's own default is 15 s.
	DefaultLockDelay = time.Second
	// DefaultClaimTTL is the TTL of the sessions claims are made under (see
	// Coordinator.Claim): a claim lives between three quarters of it and
	// twice it.
	DefaultClaimTTL = 20 * time.Minute
)

// ErrCoordinatorClosed is returned (wrapped) by Lock after Close.
var ErrCoordinatorClosed = errors.New("consul coordinator closed")

// Coordinator lets the processes of one program (the instances of a bot run
// side by side for high availability) share work through Consul: exclusive
// locks (Lock), claims that something is being handled (Claim) and a small
// key-value store (Store), every key under one prefix of Consul's KV store.
//
// Locks hang on a presence: the first Lock registers, with the agent the
// registry talks to, one service instance for the process (named by
// WithPresenceName, with a TTL check of WithPresenceTTL that the process
// passes every fifth of it) and a session tied to that check and to the
// agent's node health (serfHealth), with a lock-delay of WithLockDelay. A
// lock is a key acquired with the session. When the process dies or can no
// longer reach its agent, the check turns critical within the TTL, Consul
// ends the session and releases its keys, and after the lock-delay another
// process acquires them. The holder gives its locks up by itself (their Lost
// channels close) once no pass has reached Consul for the TTL less one pass
// interval, so it stops before anyone else can start; it also notices at
// once when Consul ended its session or gave its key to another.
//
// A Coordinator is safe for concurrent use. Close it when done: it
// releases the presence.
type Coordinator struct {
	r         *Registry
	prefix    string
	name, id  string
	ttl       time.Duration
	interval  time.Duration // between passes of the check
	stepDown  time.Duration // without a pass, the locks are given up
	lockDelay time.Duration
	claimTTL  time.Duration
	log       *slog.Logger
	holder    []byte // the value of a lock key: who holds it

	bg       context.Context // ends at Close
	stop     context.CancelFunc
	start    sync.Once
	kept     chan struct{} // closed when the presence loop ended
	mu       sync.Mutex
	pres     *presence     // the presence, nil while there is none
	presWait chan struct{} // closed and replaced when pres changes

	ttlMu       sync.Mutex
	ttlSessions map[time.Duration]ttlSession // by TTL: claims', memos'
}

// ttlSession is a session that deletes its keys when its TTL runs out.
type ttlSession struct {
	id string
	at time.Time // created
}

// presence is one session of the Coordinator's process, on one agent.
type presence struct {
	agent    int    // index in Registry.agents of the agent holding it
	session  string // Consul's session id
	lost     chan struct{}
	lostOnce sync.Once
}

func (p *presence) markLost() { p.lostOnce.Do(func() { close(p.lost) }) }

// CoordinatorOption configures a Coordinator.
type CoordinatorOption func(*coordOptions)

type coordOptions struct {
	prefix, name, id string
	ttl, lockDelay   time.Duration
	claimTTL         time.Duration
	log              *slog.Logger
}

// WithKeyPrefix sets the KV prefix every key of the Coordinator lives
// under (default "microbot/ha/"); a trailing slash is added if missing.
func WithKeyPrefix(p string) CoordinatorOption { return func(o *coordOptions) { o.prefix = p } }

// WithPresenceName sets the name of the presence service instance (default
// "microbot.ha").
func WithPresenceName(n string) CoordinatorOption { return func(o *coordOptions) { o.name = n } }

// WithInstanceID sets the id of the presence service instance (default: the
// presence name and a random UUID).
func WithInstanceID(id string) CoordinatorOption { return func(o *coordOptions) { o.id = id } }

// WithPresenceTTL sets the TTL of the presence check (default
// DefaultPresenceTTL; at least a second).
func WithPresenceTTL(d time.Duration) CoordinatorOption {
	return func(o *coordOptions) { o.ttl = d }
}

// WithLockDelay sets the lock-delay of the presence session (default
// DefaultLockDelay; 0 keeps the default, Consul's minimum is a millisecond).
func WithLockDelay(d time.Duration) CoordinatorOption {
	return func(o *coordOptions) { o.lockDelay = d }
}

// WithClaimTTL sets the TTL of the sessions claims are made under (default
// DefaultClaimTTL; between 10 s and 24 h, Consul's bounds).
func WithClaimTTL(d time.Duration) CoordinatorOption {
	return func(o *coordOptions) { o.claimTTL = d }
}

// WithCoordinatorLogger sets the logger (default: the registry's).
func WithCoordinatorLogger(l *slog.Logger) CoordinatorOption {
	return func(o *coordOptions) { o.log = l }
}

// NewCoordinator returns a Coordinator talking to Consul through r's
// agents (with its failover, timeouts, token and TLS settings). It makes no
// call to Consul: the presence is registered by the first Lock.
func NewCoordinator(r *Registry, opts ...CoordinatorOption) (*Coordinator, error) {
	o := coordOptions{prefix: "microbot/ha/", name: "microbot.ha", ttl: DefaultPresenceTTL, lockDelay: DefaultLockDelay, claimTTL: DefaultClaimTTL}
	for _, f := range opts {
		f(&o)
	}
	switch {
	case r == nil:
		return nil, errors.New("consul coordinator: no registry")
	case o.ttl < time.Second:
		return nil, fmt.Errorf("consul coordinator: presence TTL %v is under a second", o.ttl)
	case o.lockDelay < 0:
		return nil, fmt.Errorf("consul coordinator: negative lock delay %v", o.lockDelay)
	case o.claimTTL < 10*time.Second || o.claimTTL > 24*time.Hour:
		return nil, fmt.Errorf("consul coordinator: claim TTL %v is outside Consul's bounds for a session's TTL (10s to 24h)", o.claimTTL)
	case o.name == "" || strings.Contains(o.name, "/"):
		return nil, fmt.Errorf("consul coordinator: presence name %q: want a service name without '/'", o.name)
	}
	o.prefix = strings.TrimPrefix(o.prefix, "/")
	if o.prefix == "" {
		return nil, errors.New("consul coordinator: empty key prefix")
	}
	if !strings.HasSuffix(o.prefix, "/") {
		o.prefix += "/"
	}
	if o.id == "" {
		o.id = o.name + "-" + node.NewUUID()
	}
	if o.lockDelay == 0 {
		o.lockDelay = DefaultLockDelay
	}
	host, _ := os.Hostname()
	holder, err := json.Marshal(map[string]any{"instance": o.id, "host": host, "pid": os.Getpid()})
	if err != nil {
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	interval := o.ttl / 5
	c := &Coordinator{
		r:         r,
		prefix:    o.prefix,
		name:      o.name,
		id:        o.id,
		ttl:       o.ttl,
		interval:  interval,
		stepDown:  o.ttl - interval,
		lockDelay: o.lockDelay,
		claimTTL:  o.claimTTL,
		log:       cmp.Or(o.log, r.log).With("instance", o.id),
		holder:    holder,
		bg:        bg,
		stop:      stop,
		kept:      make(chan struct{}),
		presWait:  make(chan struct{}),

		ttlSessions: map[time.Duration]ttlSession{},
	}
	return c, nil
}

// Prefix returns the KV prefix of the Coordinator's keys.
func (c *Coordinator) Prefix() string { return c.prefix }

// ID returns the id of this process's presence (its service instance).
func (c *Coordinator) ID() string { return c.id }

// checkID is the presence check's id.
func (c *Coordinator) checkID() string { return "microbot-presence:" + c.id }

// Close gives up the presence: it ends the session (releasing any lock
// still held) and deregisters the presence instance, within ctx. Locks
// should be unlocked first: Consul applies the lock-delay to keys whose
// session ends while holding them.
func (c *Coordinator) Close(ctx context.Context) error {
	c.stop()
	started := true
	c.start.Do(func() { started = false; close(c.kept) })
	if !started {
		return nil
	}
	select {
	case <-c.kept:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("consul coordinator: closing: %w", ctx.Err())
	}
}

// keep holds a presence, establishing a new one whenever the last is lost,
// until Close.
func (c *Coordinator) keep() {
	defer close(c.kept)
	bo := backoff.Backoff{Min: c.interval, Max: 30 * time.Second}
	for c.bg.Err() == nil {
		p, err := c.establish(c.bg)
		if err != nil {
			if c.bg.Err() != nil {
				break
			}
			d := bo.Next()
			c.log.Warn("consul coordinator: registering this instance's presence failed; retrying", "err", err, "retry_in", d.Round(time.Millisecond))
			backoff.Sleep(c.bg, d)
			continue
		}
		bo.Reset()
		c.setPresence(p)
		c.log.Info("consul coordinator: presence registered", "session", p.session, "agent", c.r.agents[p.agent].addr, "ttl", c.ttl)
		c.hold(c.bg, p)
		p.markLost()
		c.setPresence(nil)
		// End the session and the instance, so that Consul frees the locks
		// now rather than when the check expires, if it can be reached.
		tctx, cancel := context.WithTimeout(context.Background(), c.r.timeout)
		c.teardown(tctx, p)
		cancel()
	}
}

func (c *Coordinator) setPresence(p *presence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pres = p
	close(c.presWait)
	c.presWait = make(chan struct{})
}

// presence waits for a live presence, starting the loop that keeps one the
// first time.
func (c *Coordinator) presence(ctx context.Context) (*presence, error) {
	c.start.Do(func() { go c.keep() })
	for {
		c.mu.Lock()
		p, wait := c.pres, c.presWait
		c.mu.Unlock()
		if p != nil {
			select {
			case <-p.lost:
			default:
				return p, nil
			}
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.bg.Done():
			return nil, ErrCoordinatorClosed
		case <-c.kept:
			return nil, ErrCoordinatorClosed
		}
	}
}

// establish registers the presence instance with its TTL check on an agent
// (the first that answers) and creates a session tied to the check there.
func (c *Coordinator) establish(ctx context.Context) (*presence, error) {
	reg := &api.AgentServiceRegistration{
		ID:   c.id,
		Name: c.name,
		Tags: []string{Tag, "presence"},
		Meta: map[string]string{"holder": string(c.holder)},
		Check: &api.AgentServiceCheck{
			CheckID:                        c.checkID(),
			Name:                           "microbot presence",
			TTL:                            c.ttl.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: time.Minute.String(),
		},
	}
	p := &presence{lost: make(chan struct{})}
	idx, err := c.r.call(ctx, "consul coordinator: registering the presence", -1, c.r.timeout, func(ctx context.Context, a *agent) error {
		return a.api.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
	})
	if err != nil {
		return nil, err
	}
	p.agent = idx
	a := c.r.agents[idx]
	// An agent that knew the check keeps its status (critical, after a
	// break): pass it first.
	pctx, cancel := context.WithTimeout(ctx, c.r.timeout)
	err = a.api.Agent().UpdateTTLOpts(c.checkID(), "", api.HealthPassing, (&api.QueryOptions{}).WithContext(pctx))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("consul coordinator: passing the presence check at %s: %w", a.addr, aclError(err))
	}
	// The agent syncs the check into the catalog in the background: the
	// session can only be tied to it once it is there.
	bo := backoff.Backoff{Min: 20 * time.Millisecond, Max: c.interval}
	deadline := time.Now().Add(c.ttl)
	for {
		sctx, cancel := context.WithTimeout(ctx, c.r.timeout)
		id, _, err := a.api.Session().Create(&api.SessionEntry{
			Name:          c.name + " " + c.id,
			LockDelay:     c.lockDelay,
			Behavior:      api.SessionBehaviorRelease,
			NodeChecks:    []string{"serfHealth"},
			ServiceChecks: []api.ServiceCheck{{ID: c.checkID()}},
		}, (&api.WriteOptions{}).WithContext(sctx))
		cancel()
		if err == nil {
			p.session = id
			return p, nil
		}
		err = aclError(err)
		if errors.Is(err, ErrPermissionDenied) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("consul coordinator: creating the presence session at %s: %w", a.addr, err)
		}
		backoff.Sleep(ctx, bo.Next())
	}
}

// hold keeps p alive, passing its check, until it is lost: no pass reached
// Consul for stepDown, the agent forgot the check, Consul ended the session,
// or ctx ended.
func (c *Coordinator) hold(ctx context.Context, p *presence) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	passed := make(chan time.Time, 1)
	gone := make(chan error, 2)
	go c.pass(ctx, p, passed, gone)
	go c.watchSession(ctx, p, gone)
	deadline := time.NewTimer(c.stepDown)
	defer deadline.Stop()
	for {
		select {
		case at := <-passed:
			deadline.Reset(c.stepDown - time.Since(at))
		case err := <-gone:
			c.log.Warn("consul coordinator: presence lost; its locks are given up", "err", err)
			return
		case <-deadline.C:
			c.log.Warn("consul coordinator: no pass of the presence check reached Consul in time; giving up the locks before Consul does", "for", c.stepDown)
			return
		case <-ctx.Done():
			return
		}
	}
}

// pass passes p's check every interval, sending on passed the time each
// pass that succeeded was sent. If the agent no longer knows the check, the
// presence is gone.
func (c *Coordinator) pass(ctx context.Context, p *presence, passed chan time.Time, gone chan<- error) {
	a := c.r.agents[p.agent]
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		sent := time.Now()
		pctx, cancel := context.WithTimeout(ctx, c.stepDown)
		err := a.api.Agent().UpdateTTLOpts(c.checkID(), "", api.HealthPassing, (&api.QueryOptions{}).WithContext(pctx))
		cancel()
		switch {
		case err == nil:
			select {
			case <-passed: // keep only the latest
			default:
			}
			passed <- sent
		case ctx.Err() != nil:
			return
		case refused(err):
			gone <- fmt.Errorf("the agent at %s no longer knows the presence check: %w", a.addr, err)
			return
		default:
			c.log.Debug("consul coordinator: passing the presence check failed", "agent", a.addr, "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// refused reports whether an agent answered err to a request it will not
// grant by being asked again: a 4xx status but for ACLs and rate limits
// (an unknown check is 404, or 400 in older agents).
func refused(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != 403 && se.Code != 429
}

// watchSession waits, with blocking queries, until Consul no longer has p's
// session.
func (c *Coordinator) watchSession(ctx context.Context, p *presence, gone chan<- error) {
	var index uint64
	bo := backoff.Backoff{Min: c.interval, Max: c.ttl}
	for ctx.Err() == nil {
		var entry *api.SessionEntry
		var meta *api.QueryMeta
		_, err := c.r.call(ctx, "consul coordinator: reading the presence session", p.agent, c.r.timeout+WaitTime+WaitTime/16, func(ctx context.Context, a *agent) error {
			var err error
			entry, meta, err = a.api.Session().Info(p.session, (&api.QueryOptions{WaitIndex: index, WaitTime: WaitTime}).WithContext(ctx))
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				c.log.Debug("consul coordinator: watching the presence session failed", "err", err)
				backoff.Sleep(ctx, bo.Next())
			}
			index = 0
			continue
		}
		bo.Reset()
		if entry == nil {
			gone <- errors.New("Consul ended the presence session (its check went critical, or it was destroyed)")
			return
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// teardown ends p's session and deregisters the presence instance, as far
// as Consul can be reached within ctx.
func (c *Coordinator) teardown(ctx context.Context, p *presence) {
	_, err := c.r.call(ctx, "consul coordinator: ending the presence session", p.agent, c.r.timeout, func(ctx context.Context, a *agent) error {
		_, err := a.api.Session().Destroy(p.session, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	if err != nil {
		c.log.Debug("consul coordinator: ending the presence session failed (Consul ends it when its check expires)", "err", err)
	}
	a := c.r.agents[p.agent]
	if err := a.api.Agent().ServiceDeregisterOpts(c.id, (&api.QueryOptions{}).WithContext(ctx)); err != nil && !isStatus(err, 404) {
		c.log.Debug("consul coordinator: deregistering the presence failed (Consul removes it a minute after its check expires)", "err", err)
	}
}
