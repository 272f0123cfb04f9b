// Package broadcast fans registry watch events out to watchers. It is shared
// by the registry implementations: each keeps one Hub, publishes the events
// it computes, and hands out the Watchers the Hub creates.
//
// Every watcher has its own queue, so a slow reader never blocks the
// publisher or the other watchers. A queue is bounded: a watcher that falls
// more than the bound behind is broken (its Next returns an error saying so)
// and the caller re-lists and watches again, as the Watcher contract asks.
package broadcast

import (
	"context"
	"fmt"
	"sync"

	"github.com/microbot/microbot/framework/registry"
)

// DefaultQueue is how many unread events a watcher may hold before it is
// broken.
const DefaultQueue = 4096

// Hub is a set of watchers. The zero Hub is ready to use. It is safe for
// concurrent use.
type Hub struct {
	// Queue bounds the unread events of each watcher; 0 means DefaultQueue.
	// Set it before the first Subscribe.
	Queue int

	mu   sync.Mutex
	subs map[*Watcher]struct{}
}

// Subscribe adds a watcher for the events of service (all services if
// empty). The watcher stops when ctx is done or Stop is called; onStop, if
// not nil, then runs once, after the watcher has left the hub.
func (h *Hub) Subscribe(ctx context.Context, service string, onStop func()) *Watcher {
	w := &Watcher{
		hub:     h,
		service: service,
		onStop:  onStop,
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*Watcher]struct{}{}
	}
	h.subs[w] = struct{}{}
	h.mu.Unlock()
	stop := context.AfterFunc(ctx, w.Stop)
	w.mu.Lock()
	w.stopCtx = stop
	w.mu.Unlock()
	return w
}

// Len returns the number of watchers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Publish queues results, in order, for every watcher that wants them. Each
// watcher gets its own deep copies. Publish never blocks on a reader; a
// watcher whose queue overflows is broken and leaves the hub.
func (h *Hub) Publish(results []*registry.Result) {
	if len(results) == 0 {
		return
	}
	limit := h.Queue
	if limit <= 0 {
		limit = DefaultQueue
	}
	var broken []*Watcher
	h.mu.Lock()
	for w := range h.subs {
		if !w.push(results, limit) {
			broken = append(broken, w)
		}
	}
	h.mu.Unlock()
	for _, w := range broken {
		w.Stop() // keeps the "fell behind" error for Next
	}
}

func (h *Hub) remove(w *Watcher) {
	h.mu.Lock()
	delete(h.subs, w)
	h.mu.Unlock()
}

// Watcher is a registry.Watcher fed by a Hub.
type Watcher struct {
	hub     *Hub
	service string
	onStop  func()
	stopCtx func() bool

	notify chan struct{} // a token when the queue becomes non-empty
	done   chan struct{} // closed by Stop

	mu    sync.Mutex
	queue []*registry.Result
	err   error // set when the watcher is broken or stopped
	once  sync.Once
}

var _ registry.Watcher = (*Watcher)(nil)

// push runs under the hub's lock. It reports false if the watcher is broken.
func (w *Watcher) push(results []*registry.Result, limit int) bool {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return true // stopping; Stop removes it
	}
	added := false
	for _, r := range results {
		if w.service != "" && (r.Service == nil || r.Service.Name != w.service) {
			continue
		}
		if len(w.queue) >= limit {
			w.queue = nil
			w.err = fmt.Errorf("registry watcher fell behind: more than %d events unread", limit)
			added = true
			break
		}
		w.queue = append(w.queue, &registry.Result{Action: r.Action, Service: registry.CopyService(r.Service)})
		added = true
	}
	ok := w.err == nil
	w.mu.Unlock()
	if added {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
	return ok
}

// Next blocks until the next event, the watcher breaks, or it stops (then
// the error wraps registry.ErrWatcherStopped).
func (w *Watcher) Next() (*registry.Result, error) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			r := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return r, nil
		}
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-w.notify:
		case <-w.done:
		}
	}
}

// Stop ends the watch and unblocks Next. It is safe to call more than once
// and from any goroutine.
func (w *Watcher) Stop() {
	w.once.Do(func() {
		w.hub.remove(w)
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("registry watch: %w", registry.ErrWatcherStopped)
		}
		w.queue = nil
		stopCtx := w.stopCtx
		w.mu.Unlock()
		close(w.done)
		if stopCtx != nil {
			stopCtx()
		}
		if w.onStop != nil {
			w.onStop()
		}
	})
}
