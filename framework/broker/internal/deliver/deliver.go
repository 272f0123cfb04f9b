// Package deliver is the subscriber side shared by the brokers: a Runner
// calls a subscription's handler one message at a time, recovers its
// panics, counts every outcome and logs failures (at most one line a second
// per subscription, saying how many were left out); an Inbox is the bounded
// queue in front of a Runner, with the goroutine that empties it, for the
// brokers whose client library does not queue by itself (memory, http,
// mqtt; nats.go does).
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/framework/broker"
)

// logEvery is the least time between two log lines of one subscription.
const logEvery = time.Second

// Runner runs the handler of one subscription. Run is called by one
// goroutine at a time (the Inbox's, or the client library's).
type Runner struct {
	topic, queue string
	h            broker.Handler
	log          *slog.Logger

	ctx    context.Context // the handler's; cancelled by Stop
	cancel context.CancelFunc
	done   atomic.Bool // Stop was called

	// mu is held while the handler runs. Stop takes it once, in a goroutine
	// of its own, to set stopped: from then on no handler runs, and held is
	// closed.
	mu       sync.Mutex
	stopped  bool
	held     chan struct{}
	stopOnce sync.Once

	received, handled, failed, panicked, undecodable, dropped atomic.Uint64

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

// NewRunner returns the runner of handler h subscribed to topic (in queue
// group queue, or ""), logging to log (nil: slog.Default()).
func NewRunner(topic, queue string, h broker.Handler, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{topic: topic, queue: queue, h: h, log: log, ctx: ctx, cancel: cancel, held: make(chan struct{})}
}

// Topic returns the subscribed topic.
func (r *Runner) Topic() string { return r.topic }

// Queue returns the queue group, or "".
func (r *Runner) Queue() string { return r.queue }

// Stopped reports whether Stop was called.
func (r *Runner) Stopped() bool { return r.done.Load() }

// Received counts a message arriving; the caller then runs, queues, drops
// or finds it undecodable.
func (r *Runner) Received() { r.received.Add(1) }

// Run hands e to the handler and counts the outcome. After Stop it drops e.
func (r *Runner) Run(e *broker.Event) {
	r.mu.Lock()
	if r.stopped || r.done.Load() {
		r.mu.Unlock()
		r.dropped.Add(1)
		return
	}
	size := len(e.Body)
	err, stack := r.call(e) // never panics: it recovers
	r.mu.Unlock()
	switch {
	case err == nil:
		r.handled.Add(1)
	case stack != nil:
		r.panicked.Add(1)
		r.logf(slog.LevelError, "broker: handler panicked; the subscription goes on", "err", err, "size", size, "stack", string(stack))
	case r.done.Load() && errors.Is(err, context.Canceled):
		r.dropped.Add(1) // cut short by the end of the subscription
	case errors.Is(err, broker.ErrUndecodable):
		r.undecodable.Add(1)
		r.logf(slog.LevelWarn, "broker: undecodable message dropped", "err", err, "size", size)
	default:
		r.failed.Add(1)
		r.logf(slog.LevelWarn, "broker: handler failed; the message is not delivered again", "err", err, "size", size)
	}
}

// call runs the handler, turning a panic into an error and its stack.
func (r *Runner) call(e *broker.Event) (err error, stack []byte) {
	defer func() {
		if p := recover(); p != nil {
			err, stack = fmt.Errorf("panic: %v", p), debug.Stack()
		}
	}()
	return r.h(r.ctx, e), nil
}

// Undecodable counts and logs a message the broker could not decode (its
// envelope is malformed); it never reaches the handler.
func (r *Runner) Undecodable(size int, err error) {
	r.undecodable.Add(1)
	r.logf(slog.LevelWarn, "broker: undecodable message dropped", "err", err, "size", size)
}

// Dropped counts n messages dropped because the subscription's queue was
// full or it ended; when logIt, it says so (rate-limited).
func (r *Runner) Dropped(n int, logIt bool) {
	if n <= 0 {
		return
	}
	total := r.dropped.Add(uint64(n))
	if logIt {
		r.logf(slog.LevelWarn, "broker: subscriber too slow, message dropped (its queue is full)", "dropped_total", total)
	}
}

// Stats returns the counters; Pending is left to the caller.
func (r *Runner) Stats() broker.Stats {
	return broker.Stats{
		Received:    r.received.Load(),
		Handled:     r.handled.Load(),
		Failed:      r.failed.Load(),
		Panicked:    r.panicked.Load(),
		Undecodable: r.undecodable.Load(),
		Dropped:     r.dropped.Load(),
	}
}

// Stop ends the subscription's deliveries: Run drops everything from now
// on, the handler's context is cancelled, and Stop waits until a handler
// running now returns, or ctx ends (then it returns an error saying so).
func (r *Runner) Stop(ctx context.Context) error {
	r.done.Store(true)
	r.cancel()
	r.stopOnce.Do(func() {
		go func() {
			r.mu.Lock()
			r.stopped = true
			r.mu.Unlock()
			close(r.held)
		}()
	})
	select {
	case <-r.held:
		return nil
	case <-ctx.Done():
		select {
		case <-r.held:
			return nil
		default:
		}
		return fmt.Errorf("subscription to %s: its handler did not return before the deadline: %w", r.topic, ctx.Err())
	}
}

// logf logs msg with the subscription's topic and queue, at most once per
// logEvery; the next line says how many were left out.
func (r *Runner) logf(level slog.Level, msg string, args ...any) {
	r.logMu.Lock()
	now := time.Now()
	if now.Sub(r.lastLog) < logEvery {
		r.suppressed++
		r.logMu.Unlock()
		return
	}
	r.lastLog = now
	n := r.suppressed
	r.suppressed = 0
	r.logMu.Unlock()
	args = append([]any{"topic", r.topic}, args...)
	if r.queue != "" {
		args = append(args, "queue", r.queue)
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.log.Log(context.Background(), level, msg, args...)
}
