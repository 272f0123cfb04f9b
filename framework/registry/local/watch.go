package local

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/internal/broadcast"
)

// expirySlack is added to the timer of the next expiry, so the node is
// expired when the timer fires.
const expirySlack = 10 * time.Millisecond

// Watch returns a watcher of the changes made after Watch returns, by any
// process. With registry.WatchService it sees one service only.
func (r *Registry) Watch(ctx context.Context, opts ...registry.WatchOption) (registry.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	r.hubMu.Lock()
	h := r.hub
	if h == nil {
		var err error
		if h, err = r.startHub(); err != nil {
			r.hubMu.Unlock()
			return nil, err
		}
		r.hub = h
	}
	h.refs++
	r.hubMu.Unlock()

	// Bring the snapshot up to date and subscribe in one step, so the
	// watcher sees exactly the changes after this point.
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rescanLocked() //nolint:errcheck // logged; the snapshot stays as it was
	return h.subs.Subscribe(ctx, o.Service, func() { r.release(h) }), nil
}

// hub is the one watch of the directory that the watchers of a Registry
// share. It runs while it has watchers.
type hub struct {
	r    *Registry
	refs int // watchers, guarded by r.hubMu

	subs broadcast.Hub
	poke chan struct{} // an update is wanted: see pending
	stop chan struct{} // closed when the last watcher stops

	pmu     sync.Mutex
	pending map[string]bool // node files changed since the last update
	full    bool            // the whole directory is to be read again

	mu    sync.Mutex // serializes updates and subscriptions
	snap  snapshot
	files map[string]*cached // the live node files snap is made of, by name
	// next is the earliest expiry in files, or an earlier time: an update
	// of a few files only ever moves it earlier, and the expiry timer reads
	// everything again, which sets it right.
	next    time.Time
	lastErr string // the last scan error logged
}

// snapshot is what the directory held at a scan, by service name and
// version.
type snapshot map[[2]string]*version

// version is one service name and version in a snapshot.
type version struct {
	svc   *registry.Service   // the registry.MergeView of its parts
	parts []*registry.Service // its nodes' cache entries, in file name order; nil if one (svc)
}

// of reports whether v is made of ps.
func (v *version) of(ps []*registry.Service) bool {
	if v.parts == nil {
		return len(ps) == 1 && ps[0] == v.svc
	}
	return slices.Equal(v.parts, ps)
}

// files returns the names of the node files of v.
func (v *version) files() []string {
	if v.parts == nil {
		return []string{fileName(v.svc.Name, v.svc.Nodes[0].ID)}
	}
	names := make([]string, len(v.parts))
	for i, p := range v.parts {
		names[i] = fileName(p.Name, p.Nodes[0].ID)
	}
	return names
}

// newVersion returns the version made of ps, old if it is.
func newVersion(ps []*registry.Service, old *version) *version {
	if old != nil && old.of(ps) {
		return old
	}
	v := &version{svc: ps[0]} // one node: already merged
	if len(ps) > 1 {
		// A copy: ps may be a part of the scan's slice, which would stay
		// reachable for as long as the version.
		v.svc, v.parts = registry.MergeView(ps)[0], slices.Clone(ps)
	}
	return v
}

// key returns the snapshot key of a service.
func key(s *registry.Service) [2]string { return [2]string{s.Name, s.Version} }

// newSnapshot groups the parts of a scan. A version whose parts are the
// same entries as in old is old's: the cache entries of unchanged files,
// and of files refreshed without change, are the same pointers from scan to
// scan, so telling what changed takes no merging and no comparing. If
// nothing changed, the result is old itself.
func newSnapshot(parts []*registry.Service, old snapshot) snapshot {
	groups, same := 0, 0
	eachVersion(parts, func(k [2]string, ps []*registry.Service) {
		groups++
		if o := old[k]; o != nil && o.of(ps) {
			same++
		}
	})
	if same == groups && groups == len(old) && old != nil {
		return old
	}
	snap := make(snapshot, groups)
	eachVersion(parts, func(k [2]string, ps []*registry.Service) {
		snap[k] = newVersion(ps, old[k])
	})
	return snap
}

// eachVersion calls f with the parts of each name and version, in order.
// The parts of one name are next to each other (a scan returns them in file
// name order); if they are all of one version, f gets a part of parts.
func eachVersion(parts []*registry.Service, f func(k [2]string, ps []*registry.Service)) {
	for i := 0; i < len(parts); {
		name, version := parts[i].Name, parts[i].Version
		j, mixed := i+1, false
		for ; j < len(parts) && parts[j].Name == name; j++ {
			mixed = mixed || parts[j].Version != version
		}
		if !mixed {
			f([2]string{name, version}, parts[i:j:j])
			i = j
			continue
		}
		var versions []string
		byVersion := map[string][]*registry.Service{}
		for _, p := range parts[i:j] {
			if byVersion[p.Version] == nil {
				versions = append(versions, p.Version)
			}
			byVersion[p.Version] = append(byVersion[p.Version], p)
		}
		for _, v := range versions {
			f([2]string{name, v}, byVersion[v])
		}
		i = j
	}
}

// diff returns the events from old to new (registry.Diff of the versions
// that are not the same in both).
func diff(old, new snapshot) []*registry.Result {
	var was, is []*registry.Service
	for k, v := range new {
		if o := old[k]; o != v {
			is = append(is, v.svc)
			if o != nil {
				was = append(was, o.svc)
			}
		}
	}
	for k, o := range old {
		if new[k] == nil {
			was = append(was, o.svc)
		}
	}
	if len(was)+len(is) == 0 {
		return nil
	}
	return registry.Diff(was, is)
}

// startHub takes the first snapshot and starts watching. Runs under r.hubMu.
func (r *Registry) startHub() (*hub, error) {
	h := &hub{r: r, poke: make(chan struct{}, 1), stop: make(chan struct{})}
	var fsw *fsnotify.Watcher
	if r.opts.Notify {
		var err error
		fsw, err = fsnotify.NewWatcher()
		if err == nil {
			// Watching starts before the first snapshot, so nothing falls
			// in between.
			if err = fsw.Add(r.opts.Dir); err != nil {
				fsw.Close()
			}
		}
		if err != nil {
			r.opts.Logger.Warn("local registry: no change notification, polling", "dir", r.opts.Dir, "every", r.opts.PollInterval, "err", err)
			fsw = nil
		}
	}
	if err := h.rescanLocked(); err != nil {
		if fsw != nil {
			fsw.Close()
		}
		return nil, fmt.Errorf("local registry: watch: %w", err)
	}
	go h.loop(fsw)
	return h, nil
}

// release drops a watcher; the last one stops the hub.
func (r *Registry) release(h *hub) {
	r.hubMu.Lock()
	defer r.hubMu.Unlock()
	h.refs--
	if h.refs == 0 {
		close(h.stop)
		if r.hub == h {
			r.hub = nil
		}
	}
}

// poke tells the running hub, if any, that the node files names have
// changed; no names: that anything may have.
func (r *Registry) poke(names ...string) {
	r.hubMu.Lock()
	h := r.hub
	r.hubMu.Unlock()
	if h != nil {
		h.want(names...)
	}
}

// want marks the node files names (all if none) to be read again and wakes
// the loop.
func (h *hub) want(names ...string) {
	h.mark(names...)
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// mark marks the node files names (all if none) to be read again at the
// next update.
func (h *hub) mark(names ...string) {
	h.pmu.Lock()
	defer h.pmu.Unlock()
	if len(names) == 0 {
		h.full = true
	}
	for _, n := range names {
		if h.pending == nil {
			h.pending = map[string]bool{}
		}
		h.pending[n] = true
	}
}

// event marks what a change notification is about: a node file, nothing
// (a temporary file, the lock, a file not ours), or, for anything else (the
// directory itself), everything.
func (h *hub) event(ev fsnotify.Event) {
	dir, name := filepath.Split(ev.Name)
	switch {
	case filepath.Clean(dir) != h.r.opts.Dir:
		h.mark()
	case ours(name):
		h.mark(name)
	}
}

func (h *hub) loop(fsw *fsnotify.Watcher) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fsw != nil {
		defer fsw.Close()
		events, errs = fsw.Events, fsw.Errors
	}
	poll := time.NewTicker(h.r.opts.PollInterval)
	defer poll.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		h.mu.Lock()
		next := h.next
		h.mu.Unlock()
		if next.IsZero() {
			expiry.Stop()
		} else {
			expiry.Reset(time.Until(next) + expirySlack)
		}
		select {
		case <-h.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			h.event(ev)
			// Take the burst at once: one update covers all of it.
			for more := true; more; {
				select {
				case ev, ok := <-events:
					if !ok {
						events, more = nil, false
						break
					}
					h.event(ev)
				default:
					more = false
				}
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Most likely an overflow: events were lost. Read it all again.
			h.r.opts.Logger.Warn("local registry: change notification", "dir", h.r.opts.Dir, "err", err)
			h.mark()
		case <-h.poke:
		case <-poll.C:
			h.mark()
		case <-expiry.C:
			h.mark()
		}
		h.mu.Lock()
		h.updateLocked()
		h.mu.Unlock()
	}
}

// updateLocked reads again what is marked: the whole directory, or only
// the node files named by change notifications and pokes.
func (h *hub) updateLocked() {
	h.pmu.Lock()
	pending, full := h.pending, h.full
	h.pending, h.full = nil, false
	h.pmu.Unlock()
	switch {
	case full:
		h.rescanLocked() //nolint:errcheck // logged; the next poll tries again
	case len(pending) > 0:
		h.refreshLocked(pending)
	}
}

// rescanLocked reads the directory and publishes how it changed since the
// last snapshot. A failed read changes nothing; it is logged once.
func (h *hub) rescanLocked() error {
	files := make(map[string]*cached, len(h.files))
	var parts []*registry.Service
	next, err := h.r.scan("", func(name string, c *cached) {
		files[name] = c
		parts = append(parts, c.svc)
	})
	if err != nil {
		if msg := err.Error(); msg != h.lastErr {
			h.lastErr = msg
			h.r.opts.Logger.Warn("local registry: reading the directory", "dir", h.r.opts.Dir, "err", err)
		}
		return err
	}
	h.lastErr = ""
	snap := newSnapshot(parts, h.snap)
	results := diff(h.snap, snap)
	h.snap, h.files, h.next = snap, files, next
	h.subs.Publish(results)
	return nil
}

// refreshLocked reads the node files names again and publishes how the
// versions of services they belong to (before or now) changed. The rest of
// the snapshot stays as it is: change notifications and pokes name every
// node file that changes, and the polls read everything.
func (h *hub) refreshLocked(names map[string]bool) {
	now := time.Now()
	changed := map[[2]string][]string{} // the versions concerned: their files that changed
	var garbage []string
	for name := range names {
		if c := h.files[name]; c != nil {
			changed[key(c.svc)] = append(changed[key(c.svc)], name)
		}
		c, bad := h.r.live(name, now)
		if bad {
			garbage = append(garbage, name)
		}
		if c == nil {
			delete(h.files, name)
			continue
		}
		h.files[name] = c
		changed[key(c.svc)] = append(changed[key(c.svc)], name)
		if !c.expires.IsZero() && (h.next.IsZero() || c.expires.Before(h.next)) {
			h.next = c.expires
		}
	}
	if len(garbage) > 0 {
		h.r.collect(garbage)
	}
	was, is := snapshot{}, snapshot{}
	for k, names := range changed {
		// The files of version k: those it had, and those changed.
		o := h.snap[k]
		var files []string
		if o != nil {
			was[k] = o
			files = o.files()
		}
		files = append(files, names...)
		slices.Sort(files) // in file name order, as a scan gives them
		files = slices.Compact(files)
		var parts []*registry.Service
		for _, name := range files {
			if c := h.files[name]; c != nil && key(c.svc) == k {
				parts = append(parts, c.svc)
			}
		}
		if len(parts) > 0 {
			is[k] = newVersion(parts, o)
		}
	}
	results := diff(was, is)
	for k := range was {
		delete(h.snap, k)
	}
	for k, v := range is {
		h.snap[k] = v
	}
	h.subs.Publish(results)
}
