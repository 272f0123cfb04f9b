package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/internal/backoff"
)

// Backoff bounds of a watch retrying an agent that does not answer.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Watch returns a watcher fed by Consul blocking queries: one on the catalog's
// service names (unless registry.WatchService names one service) and one per
// service on its passing instances, so a change arrives as soon as Consul
// commits it. Watch reads the current state before it returns and reports
// only changes after that, as registry.Diff defines them (one Result per
// service version that appeared, changed or went). When the agents cannot be
// reached the watcher retries with backoff and, once one answers, reports
// what changed meanwhile.
func (r *Registry) Watch(ctx context.Context, opts ...registry.WatchOption) (registry.Watcher, error) {
	var o registry.WatchOptions
	for _, opt := range opts {
		opt(&o)
	}
	if strings.Contains(o.Service, "/") {
		return nil, fmt.Errorf("consul watch %q: invalid service name", o.Service)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{r: r, ctx: wctx, cancel: cancel, results: make(chan *registry.Result, 64)}
	refused := func(err error) (registry.Watcher, error) {
		cancel()
		return nil, fmt.Errorf("consul watch: %w", err)
	}
	if o.Service != "" {
		st, err := w.baseline(o.Service)
		if errors.Is(err, ErrPermissionDenied) {
			return refused(err)
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.watchService(wctx, o.Service, st)
		}()
		return w, nil
	}
	// Baseline: the names now, and each one's nodes now.
	var index uint64
	states := map[string]*serviceState{}
	names, idx, err := r.serviceNames(wctx, 0)
	switch {
	case err == nil:
		index = idx
		for _, name := range names {
			st, err := w.baseline(name)
			if errors.Is(err, ErrPermissionDenied) {
				return refused(err)
			}
			states[name] = st
		}
	case errors.Is(err, ErrPermissionDenied):
		return refused(err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.watchAll(wctx, index, states)
	}()
	return w, nil
}

// serviceNames returns the names of the catalog's services, every one of
// them (microbot's, go-micro's, Consul's own), sorted, blocking until the
// catalog index passes index when it is not zero. It returns an error
// wrapping ErrPermissionDenied when Consul's ACLs hid every service.
func (r *Registry) serviceNames(ctx context.Context, index uint64) ([]string, uint64, error) {
	services, meta, err := read(ctx, r, "consul list services", index,
		func(a *agent, q *api.QueryOptions) (map[string][]string, *api.QueryMeta, error) {
			return a.api.Catalog().Services(q)
		})
	if err != nil {
		return nil, 0, err
	}
	// A catalog always holds Consul's own service: an empty one was
	// emptied by the ACLs.
	if len(services) == 0 {
		if err := r.hiddenByACL(meta, true, namesNeed); err != nil {
			return nil, 0, fmt.Errorf("consul list services: %w", err)
		}
	} else if meta.ResultsFilteredByACLs {
		r.partlyHidden(namesNeed)
	}
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, meta.LastIndex, nil
}

type watcher struct {
	r       *Registry
	ctx     context.Context
	cancel  context.CancelFunc
	results chan *registry.Result
	wg      sync.WaitGroup
}

// Next returns the next change, or an error wrapping
// registry.ErrWatcherStopped once the watcher is stopped.
func (w *watcher) Next() (*registry.Result, error) {
	if w.ctx.Err() != nil {
		return nil, fmt.Errorf("consul watch: %w", registry.ErrWatcherStopped)
	}
	select {
	case res := <-w.results:
		return res, nil
	case <-w.ctx.Done():
		return nil, fmt.Errorf("consul watch: %w", registry.ErrWatcherStopped)
	}
}

// Stop ends the watch, unblocks Next and waits for the watch's queries to
// end.
func (w *watcher) Stop() {
	w.cancel()
	w.wg.Wait()
}

// serviceState is what a watch last saw of one service.
type serviceState struct {
	index    uint64              // Consul index of that view; 0: none yet
	services []*registry.Service // by version, as registry.Merge returns
}

// baseline reads the service's current nodes; if Consul does not answer, it
// starts from nothing, and the first answer is reported as Creates. The
// error says why it started from nothing.
func (w *watcher) baseline(name string) (*serviceState, error) {
	st := &serviceState{}
	entries, idx, err := w.r.watchHealth(w.ctx, name, 0)
	if err != nil {
		return st, err
	}
	st.index = idx
	st.services = registry.Merge(w.r.decodeEntries(entries))
	return st, nil
}

// watchHealth is health for a watch: an empty answer that Consul's ACLs
// emptied is an error (wrapping ErrPermissionDenied), not a service gone.
func (r *Registry) watchHealth(ctx context.Context, name string, index uint64) ([]*api.ServiceEntry, uint64, error) {
	entries, meta, err := r.health(ctx, name, index)
	if err != nil {
		return nil, 0, err
	}
	if len(entries) == 0 {
		if err := r.hiddenByACL(meta, false, instancesNeed(name)); err != nil {
			return nil, 0, fmt.Errorf("consul watch %q: %w", name, err)
		}
	}
	return entries, meta.LastIndex, nil
}

// watchAll follows the catalog's service names and runs watchService for
// each; when a name leaves the catalog its watch reports its nodes deleted.
func (w *watcher) watchAll(ctx context.Context, index uint64, states map[string]*serviceState) {
	type child struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	children := map[string]*child{}
	start := func(name string, st *serviceState) {
		cctx, cancel := context.WithCancel(ctx)
		c := &child{cancel: cancel, done: make(chan struct{})}
		children[name] = c
		go func() {
			defer close(c.done)
			w.watchService(cctx, name, st)
		}()
	}
	defer func() {
		for _, c := range children {
			c.cancel()
			<-c.done
		}
	}()
	for name, st := range states {
		start(name, st)
	}
	bo := newOutage()
	for {
		names, idx, err := w.r.serviceNames(ctx, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			bo.failed(w.r.log, "", err)
			index = 0 // the agent may come back with a fresh, lower index
			if !bo.sleep(ctx) {
				return
			}
			continue
		}
		bo.reset(w.r.log, "")
		index = nextIndex(index, idx)
		live := map[string]bool{}
		for _, name := range names {
			live[name] = true
			if children[name] == nil {
				start(name, &serviceState{})
			}
		}
		for name, c := range children {
			if !live[name] {
				c.cancel()
				<-c.done
				delete(children, name)
			}
		}
	}
}

// watchService follows one service's passing instances with blocking
// queries from st and sends the Results of each change. When ctx is
// cancelled while the watcher itself still runs (the name left the
// catalog), it reports every version it last saw as deleted.
func (w *watcher) watchService(ctx context.Context, name string, st *serviceState) {
	gone := func() {
		if w.ctx.Err() == nil {
			w.emit(registry.Diff(st.services, nil))
		}
	}
	bo := newOutage()
	for {
		entries, idx, err := w.r.watchHealth(ctx, name, st.index)
		if ctx.Err() != nil {
			gone()
			return
		}
		if err != nil {
			bo.failed(w.r.log, name, err)
			st.index = 0 // the agent may come back with a fresh, lower index
			if !bo.sleep(ctx) {
				gone()
				return
			}
			continue
		}
		bo.reset(w.r.log, name)
		st.index = nextIndex(st.index, idx)
		cur := registry.Merge(w.r.decodeEntries(entries))
		if !w.emit(registry.Diff(st.services, cur)) {
			return
		}
		st.services = cur
	}
}

// nextIndex applies Consul's rules for blocking-query indexes: start over
// when the index went backwards (a restarted or different server), and never
// use zero after a first answer.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got == 0:
		return 1
	}
	return got
}

// emit sends the results in order; it returns false if the watcher stopped.
func (w *watcher) emit(rs []*registry.Result) bool {
	for _, res := range rs {
		select {
		case w.results <- res:
		case <-w.ctx.Done():
			return false
		}
	}
	return true
}

// outage follows the failures in a row of one watch loop's queries: it
// logs the first failure of an outage as a warning and the recovery, not
// every retry, and waits between tries with backoff, from minBackoff to
// maxBackoff.
type outage struct{ bo backoff.Backoff }

func newOutage() *outage {
	return &outage{bo: backoff.Backoff{Min: minBackoff, Max: maxBackoff}}
}

// failed records a failed query of service (empty: the service names).
func (o *outage) failed(log *slog.Logger, service string, err error) {
	if n := o.bo.Failures() + 1; n == 1 {
		log.Warn("watch: Consul query failed; retrying with backoff", "service", service, "err", err)
	} else {
		log.Debug("watch: Consul query failed again", "service", service, "attempt", n, "err", err)
	}
}

// reset records a successful query.
func (o *outage) reset(log *slog.Logger, service string) {
	if n := o.bo.Failures(); n > 0 {
		log.Info("watch: Consul answers again", "service", service, "failed_attempts", n)
	}
	o.bo.Reset()
}

// sleep waits the next backoff; it returns false if ctx ended first.
func (o *outage) sleep(ctx context.Context) bool { return backoff.Sleep(ctx, o.bo.Next()) }
