// Package memory is an in-process service registry, for tests and for
// programs made of one process (--registry=memory).
//
// It keeps one entry per node, keyed by service name and node ID (a node
// registered again, even under another version, replaces its entry). Nodes
// registered with a TTL expire when it passes without a new Register; a TTL
// of zero means the nodes never expire. Watchers see exact events, computed
// by registry.Diff: create, update, and delete with the nodes that went
// away, including those that expired. Everything handed in or out is a deep
// copy, so callers cannot change the registry's state by mutating what they
// passed or got.
package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/internal/broadcast"
)

// Registry is an in-process registry. It is safe for concurrent use. The
// zero value is not usable; call New.
type Registry struct {
	hub broadcast.Hub

	mu sync.Mutex
	// nodes holds one entry per node: service name -> node ID -> entry.
	nodes map[string]map[string]*entry
	// seen is what watchers have been told, per service name; events are
	// the diff between it and the live state.
	seen map[string][]*registry.Service
	// timer fires at the earliest expiry (nil when nothing expires).
	timer   *time.Timer
	timerAt time.Time

	kv *kvStore // the KV store (see KV)
}

// entry is one registered node: a copy of its service holding that node only.
type entry struct {
	svc     *registry.Service
	expires time.Time // zero: never
}

func (e *entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

var _ registry.Registry = (*Registry)(nil)

// New returns an empty registry.
func New() *Registry {
	return &Registry{
		nodes: map[string]map[string]*entry{},
		seen:  map[string][]*registry.Service{},
		kv:    newKVStore(),
	}
}

// String returns "memory".
func (r *Registry) String() string { return "memory" }

// Register adds or replaces every node of s. The nodes expire after the TTL
// of registry.WithTTL (never if zero).
func (r *Registry) Register(ctx context.Context, s *registry.Service, opts ...registry.RegisterOption) error {
	if err := registry.ValidateRegister(s); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("register %q: %w", s.Name, err)
	}
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	if o.TTL < 0 {
		return fmt.Errorf("%w: service %q: negative TTL %v", registry.ErrInvalid, s.Name, o.TTL)
	}
	now := time.Now()
	var expires time.Time
	if o.TTL > 0 {
		expires = now.Add(o.TTL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.nodes[s.Name]
	if m == nil {
		m = map[string]*entry{}
		r.nodes[s.Name] = m
	}
	for _, n := range s.Nodes {
		one := registry.CopyService(&registry.Service{
			Name: s.Name, Version: s.Version, Metadata: s.Metadata, Endpoints: s.Endpoints,
			Nodes: []*registry.Node{n},
		})
		m[n.ID] = &entry{svc: one, expires: expires}
	}
	r.publishLocked(now, s.Name)
	if !expires.IsZero() {
		r.scheduleLocked(now, expires)
	}
	return nil
}

// Deregister removes the nodes of s (matched by service name and node ID;
// the version does not matter). Nodes that are not registered are ignored.
func (r *Registry) Deregister(ctx context.Context, s *registry.Service) error {
	if err := registry.ValidateDeregister(s); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("deregister %q: %w", s.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.nodes[s.Name]
	for _, n := range s.Nodes {
		delete(m, n.ID)
	}
	r.publishLocked(time.Now(), s.Name)
	return nil
}

// GetService returns the live nodes of the service, one Service per version.
func (r *Registry) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get service %q: %w", name, err)
	}
	r.mu.Lock()
	svcs := r.viewLocked(time.Now(), name)
	r.mu.Unlock()
	if len(svcs) == 0 {
		return nil, fmt.Errorf("service %q: %w", name, registry.ErrNotFound)
	}
	return svcs, nil // viewLocked returns fresh copies
}

// ListServices returns every service with a live node, one entry per name
// and version, sorted by name then version. The entries hold the name,
// version and metadata only.
func (r *Registry) ListServices(ctx context.Context) ([]*registry.Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	now := time.Now()
	r.mu.Lock()
	names := make([]string, 0, len(r.nodes))
	for name := range r.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*registry.Service
	for _, name := range names {
		for _, s := range r.viewLocked(now, name) {
			s.Nodes, s.Endpoints = nil, nil
			out = append(out, s)
		}
	}
	r.mu.Unlock()
	return out, nil
}

// Watch returns a watcher of the changes made after Watch returns. With
// registry.WatchService it sees one service only.
func (r *Registry) Watch(ctx context.Context, opts ...registry.WatchOption) (registry.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	// Subscribing under r.mu orders it with every publish: the watcher sees
	// exactly the changes made after this point.
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now()) // report what expired before this point to the older watchers
	return r.hub.Subscribe(ctx, o.Service, nil), nil
}

// viewLocked returns the live state of one service, merged per version.
func (r *Registry) viewLocked(now time.Time, name string) []*registry.Service {
	m := r.nodes[name]
	parts := make([]*registry.Service, 0, len(m))
	for _, e := range m {
		if !e.expired(now) {
			parts = append(parts, e.svc)
		}
	}
	return registry.Merge(parts)
}

// publishLocked tells the watchers how service name changed since they were
// last told, and drops expired entries of it.
func (r *Registry) publishLocked(now time.Time, name string) {
	view := r.viewLocked(now, name)
	r.hub.Publish(registry.Diff(r.seen[name], view))
	m := r.nodes[name]
	for id, e := range m {
		if e.expired(now) {
			delete(m, id)
		}
	}
	if len(m) == 0 {
		delete(r.nodes, name)
	}
	if len(view) == 0 {
		delete(r.seen, name)
	} else {
		r.seen[name] = view
	}
}

// expireLocked publishes the services that have an expired node and
// schedules the timer for the next expiry.
func (r *Registry) expireLocked(now time.Time) {
	var next time.Time
	for name, m := range r.nodes {
		expired := false
		for _, e := range m {
			switch {
			case e.expires.IsZero():
			case e.expired(now):
				expired = true
			case next.IsZero() || e.expires.Before(next):
				next = e.expires
			}
		}
		if expired {
			r.publishLocked(now, name)
		}
	}
	r.timerAt = time.Time{}
	if !next.IsZero() {
		r.scheduleLocked(now, next)
	}
}

// scheduleLocked makes sure the timer fires no later than at.
func (r *Registry) scheduleLocked(now, at time.Time) {
	if !r.timerAt.IsZero() && !at.Before(r.timerAt) {
		return
	}
	r.timerAt = at
	d := at.Sub(now)
	if r.timer == nil {
		r.timer = time.AfterFunc(d, r.onTimer)
	} else {
		r.timer.Reset(d)
	}
}

func (r *Registry) onTimer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
}
