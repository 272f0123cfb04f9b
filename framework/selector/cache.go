package selector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/internal/backoff"
)

// ErrClosed is returned (wrapped) by Select after Close.
var ErrClosed = errors.New("selector closed")

// Defaults of the options.
const (
	DefaultCacheTTL     = time.Minute
	DefaultAvoidFor     = 10 * time.Second
	DefaultFetchTimeout = 10 * time.Second
)

// Options configure a Selector made by New.
type Options struct {
	// Strategy orders the nodes of a Select (default Random).
	Strategy Strategy
	// CacheTTL is how long a node list is used without asking the registry
	// again, when no watch event has said it changed. The watch makes
	// changes show at once; the TTL only bounds how long a lost event can
	// keep a list stale.
	CacheTTL time.Duration
	// AvoidFor is how long a node marked failed is tried only after all the
	// others (Mark with a nil error ends it sooner).
	AvoidFor time.Duration
	// FetchTimeout bounds one GetService of the registry.
	FetchTimeout time.Duration
	// Logger receives warnings: registry unreachable, watch broken.
	Logger *slog.Logger
}

// Option sets an Options field.
type Option func(*Options)

// WithStrategy sets the strategy (default Random).
func WithStrategy(s Strategy) Option { return func(o *Options) { o.Strategy = s } }

// WithCacheTTL sets how long a node list is used without a watch event before
// the registry is asked again.
func WithCacheTTL(d time.Duration) Option { return func(o *Options) { o.CacheTTL = d } }

// WithAvoidFor sets how long a failed node is tried last.
func WithAvoidFor(d time.Duration) Option { return func(o *Options) { o.AvoidFor = d } }

// WithFetchTimeout bounds each registry lookup.
func WithFetchTimeout(d time.Duration) Option { return func(o *Options) { o.FetchTimeout = d } }

// WithLogger sets where warnings go (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Strategy orders the nodes a Select yields.
type Strategy interface {
	// Order reorders nodes in place for the n-th Select of a service (n
	// counts from 0). nodes come sorted by ID.
	Order(nodes []*registry.Node, n uint64)
	// String names the strategy ("random", "roundrobin").
	String() string
}

// Random returns the strategy that tries the nodes in a random order, a new
// one for every Select. It is the default.
func Random() Strategy { return random{} }

// RoundRobin returns the strategy that starts every Select of a service
// with the node after the one the previous Select started with.
func RoundRobin() Strategy { return roundRobin{} }

type random struct{}

func (random) Order(nodes []*registry.Node, _ uint64) {
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
}

func (random) String() string { return "random" }

type roundRobin struct{}

func (roundRobin) Order(nodes []*registry.Node, n uint64) {
	if len(nodes) < 2 {
		return
	}
	k := int(n % uint64(len(nodes)))
	// Rotate left by k: reverse both parts, then the whole.
	reverse(nodes[:k])
	reverse(nodes[k:])
	reverse(nodes)
}

func (roundRobin) String() string { return "roundrobin" }

func reverse(s []*registry.Node) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// New returns a Selector over reg. It caches the node list of each service
// it is asked for, and watches reg (from the first Select until Close) to
// drop a list as soon as the service changes; the watch is restarted, with
// backoff, when it breaks. When reg cannot be reached, the last list known
// is used. A node marked failed is tried after the others for a while.
func New(reg registry.Registry, opts ...Option) Selector {
	o := Options{Strategy: Random(), CacheTTL: DefaultCacheTTL, AvoidFor: DefaultAvoidFor, FetchTimeout: DefaultFetchTimeout}
	for _, f := range opts {
		f(&o)
	}
	if o.Strategy == nil {
		o.Strategy = Random()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &cache{
		reg:        reg,
		opts:       o,
		ctx:        ctx,
		cancel:     cancel,
		entries:    map[string]*entry{},
		invalid:    map[string]uint64{},
		failed:     map[string]map[string]time.Time{},
		backoffMin: 100 * time.Millisecond,
		backoffMax: 30 * time.Second,
		staleRetry: 5 * time.Second,
	}
}

// cache is the Selector New returns.
type cache struct {
	reg    registry.Registry
	opts   Options
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	flight singleflight.Group
	wg     sync.WaitGroup // the watch loop

	backoffMin, backoffMax time.Duration // of watch restarts
	staleRetry             time.Duration // after a failed lookup, how long the old list is used before trying again

	mu       sync.Mutex
	closed   bool
	watching bool
	watcher  registry.Watcher // the current watch, to stop it on Close
	entries  map[string]*entry
	// epoch counts invalidations; invalid[service] and invalidAll hold the
	// epoch of the last one, so a lookup that started before it stores a
	// list already stale.
	epoch      uint64
	invalid    map[string]uint64
	invalidAll uint64
	failed     map[string]map[string]time.Time // service -> node ID -> when it failed
}

// entry is the cached node list of a service.
type entry struct {
	nodes    []*registry.Node  // sorted by ID; never changed once stored
	versions map[string]string // node ID -> the version it is registered under
	fetched  time.Time
	stale    bool      // a watch event said the service changed
	retryAt  time.Time // the registry failed: use nodes until then
	outage   bool      // the registry failed (logged once)
	selects  atomic.Uint64
}

var _ VersionSelector = (*cache)(nil)

func (c *cache) String() string { return c.opts.Strategy.String() }

// Select returns a Next over the nodes of service: first those not marked
// failed, in the order of the strategy, then the failed ones, longest
// failed first. Each node comes once. A Next is for one goroutine.
func (c *cache) Select(ctx context.Context, service string) (Next, error) {
	e, err := c.lookup(ctx, service)
	if err != nil {
		return nil, err
	}
	return nextOf(service, c.order(service, e)), nil
}

// SelectVersions returns a Next per version of service, each over the
// version's nodes in the order Select would try them.
func (c *cache) SelectVersions(ctx context.Context, service string) (map[string]Next, error) {
	e, err := c.lookup(ctx, service)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	vs := e.versions // replaced by a fetch, never changed
	c.mu.Unlock()
	byVersion := map[string][]*registry.Node{}
	for _, n := range c.order(service, e) {
		if v, ok := vs[n.ID]; ok { // a node fetched since is left for next time
			byVersion[v] = append(byVersion[v], n)
		}
	}
	out := make(map[string]Next, len(byVersion))
	for v, nodes := range byVersion {
		out[v] = nextOf(service, nodes)
	}
	return out, nil
}

// nextOf returns a Next yielding copies of order's nodes, in order.
func nextOf(service string, order []*registry.Node) Next {
	i := 0
	return func() (*registry.Node, error) {
		if i >= len(order) {
			return nil, fmt.Errorf("service %q: all %d nodes tried: %w", service, len(order), ErrNoneAvailable)
		}
		n := order[i]
		i++
		return registry.CopyNode(n), nil
	}
}

// lookup returns the entry of service, from the cache if it is fresh.
func (c *cache) lookup(ctx context.Context, service string) (*entry, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("select %q: %w", service, ErrClosed)
	}
	if !c.watching {
		c.watching = true
		c.wg.Add(1)
		go c.watch()
	}
	e := c.entries[service]
	now := time.Now()
	if e != nil && (!e.stale && now.Sub(e.fetched) < c.opts.CacheTTL || now.Before(e.retryAt)) {
		c.mu.Unlock()
		return e, nil
	}
	c.mu.Unlock()

	ch := c.flight.DoChan(service, func() (any, error) { return c.fetch(service) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*entry), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("select %q: %w", service, ctx.Err())
	}
}

// fetch asks the registry for the nodes of service and caches them. When the
// registry fails (other than with ErrNotFound) and a list is known, the list
// is kept and used for staleRetry before the registry is asked again.
func (c *cache) fetch(service string) (*entry, error) {
	c.mu.Lock()
	start := c.epoch
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(c.ctx, c.opts.FetchTimeout)
	svcs, err := c.reg.GetService(ctx, service)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	old := c.entries[service]
	var nodes []*registry.Node
	if err == nil {
		nodes = flatten(svcs)
		if len(nodes) == 0 {
			err = fmt.Errorf("service %q has no nodes: %w", service, registry.ErrNotFound)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, registry.ErrNotFound):
		delete(c.entries, service)
		return nil, err
	case old != nil && !c.closed:
		if !old.outage {
			old.outage = true
			c.opts.Logger.Warn("selector: registry lookup failed, using the last known nodes",
				"service", service, "nodes", len(old.nodes), "err", err)
		}
		old.retryAt = now.Add(c.staleRetry)
		return old, nil
	default:
		return nil, fmt.Errorf("select %q: %w", service, err)
	}
	e := old
	if e == nil {
		e = &entry{}
		c.entries[service] = e
	} else if e.outage {
		c.opts.Logger.Info("selector: registry lookups work again", "service", service)
	}
	e.nodes, e.versions, e.fetched, e.retryAt, e.outage = nodes, versions(svcs), now, time.Time{}, false
	// An event that came while the registry was being asked may not be in
	// what it answered.
	e.stale = c.invalid[service] > start || c.invalidAll > start
	return e, nil
}

// versions maps each node ID of svcs to the version of the first service
// that holds it (flatten keeps that node).
func versions(svcs []*registry.Service) map[string]string {
	m := map[string]string{}
	for _, s := range svcs {
		if s == nil {
			continue
		}
		for _, n := range s.Nodes {
			if _, seen := m[n.ID]; n != nil && !seen {
				m[n.ID] = s.Version
			}
		}
	}
	return m
}

// flatten returns the nodes of every version, without duplicate IDs,
// sorted by ID.
func flatten(svcs []*registry.Service) []*registry.Node {
	seen := map[string]bool{}
	var nodes []*registry.Node
	for _, s := range svcs {
		if s == nil {
			continue
		}
		for _, n := range s.Nodes {
			if n != nil && !seen[n.ID] {
				seen[n.ID] = true
				nodes = append(nodes, registry.CopyNode(n))
			}
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes
}

// order returns the nodes of e in the order to try them.
func (c *cache) order(service string, e *entry) []*registry.Node {
	n := e.selects.Add(1) - 1
	now := time.Now()
	c.mu.Lock()
	nodes := e.nodes
	marks := c.failed[service]
	ok := make([]*registry.Node, 0, len(nodes))
	var bad []*registry.Node
	var since []time.Time
	for _, node := range nodes {
		at, failed := marks[node.ID]
		if failed && now.Sub(at) >= c.opts.AvoidFor {
			delete(marks, node.ID) // recovered
			failed = false
		}
		if failed {
			bad = append(bad, node)
			since = append(since, at)
		} else {
			ok = append(ok, node)
		}
	}
	if marks != nil && len(marks) == 0 {
		delete(c.failed, service)
	}
	c.mu.Unlock()
	c.opts.Strategy.Order(ok, n)
	if len(bad) > 0 {
		sort.Sort(byTime{bad, since})
		ok = append(ok, bad...)
	}
	return ok
}

// byTime sorts nodes by the time they failed, earliest first.
type byTime struct {
	nodes []*registry.Node
	at    []time.Time
}

func (b byTime) Len() int           { return len(b.nodes) }
func (b byTime) Less(i, j int) bool { return b.at[i].Before(b.at[j]) }
func (b byTime) Swap(i, j int) {
	b.nodes[i], b.nodes[j] = b.nodes[j], b.nodes[i]
	b.at[i], b.at[j] = b.at[j], b.at[i]
}

// Mark records the outcome of a call to node: a failure puts it last for
// AvoidFor, a success ends that at once.
func (c *cache) Mark(service string, node *registry.Node, err error) {
	if node == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	marks := c.failed[service]
	if err == nil {
		delete(marks, node.ID)
		if marks != nil && len(marks) == 0 {
			delete(c.failed, service)
		}
		return
	}
	if marks == nil {
		marks = map[string]time.Time{}
		c.failed[service] = marks
	}
	marks[node.ID] = time.Now()
}

// Close stops the watch and waits for it to end. Select fails afterwards
// with ErrClosed.
func (c *cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	w := c.watcher
	c.mu.Unlock()
	c.cancel()
	if w != nil {
		w.Stop()
	}
	c.wg.Wait()
	return nil
}

// invalidate marks the list of service stale, or every list if service is
// empty.
func (c *cache) invalidate(service string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if service == "" {
		c.invalidAll = c.epoch
		for _, e := range c.entries {
			e.stale = true
		}
		return
	}
	c.invalid[service] = c.epoch
	if e := c.entries[service]; e != nil {
		e.stale = true
	}
}

// watch keeps a registry watch running until Close, restarting it with
// exponential backoff when it cannot start or breaks.
func (c *cache) watch() {
	defer c.wg.Done()
	bo := backoff.Backoff{Min: c.backoffMin, Max: c.backoffMax}
	for {
		w, err := c.reg.Watch(c.ctx)
		if err == nil {
			// Changes before this watch started were not seen.
			c.invalidate("")
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				w.Stop()
				return
			}
			c.watcher = w // published after the invalidation, so a watcher seen means lists fetched from now on are kept
			c.mu.Unlock()
			started := time.Now()
			for {
				res, err2 := w.Next()
				if err2 != nil {
					err = err2
					break
				}
				if res != nil && res.Service != nil {
					c.invalidate(res.Service.Name)
				}
			}
			w.Stop()
			c.mu.Lock()
			c.watcher = nil
			c.mu.Unlock()
			if time.Since(started) > c.backoffMax {
				bo.Reset() // it ran well for a while
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		d := bo.Next()
		c.opts.Logger.Warn("selector: registry watch broke, restarting", "registry", c.reg.String(), "in", d.Round(time.Millisecond), "err", err)
		// Lists may go stale unseen until the watch is back.
		c.invalidate("")
		if !backoff.Sleep(c.ctx, d) {
			return
		}
	}
}
