package deliver

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/microbot/microbot/framework/broker"
)

// Inbox is the bounded queue of one subscription and the goroutine that
// hands its messages to the Runner, in arrival order. Offer never blocks:
// a message that finds the queue full (by count or by bytes) is dropped
// and counted.
type Inbox struct {
	*Runner
	ch       chan *broker.Event
	maxBytes int64
	bytes    atomic.Int64

	mu     sync.RWMutex // Offer holds it for reading; closing the intake, for writing
	closed bool         // the intake (ch) is closed
	quit   chan struct{}
	once   sync.Once
	exited chan struct{} // the worker returned
}

// NewInbox starts the queue of r, bounded by o.MaxPending messages and
// o.MaxPendingBytes bytes of bodies.
func NewInbox(r *Runner, o broker.SubscribeOptions) *Inbox {
	q := &Inbox{
		Runner:   r,
		ch:       make(chan *broker.Event, o.MaxPending),
		maxBytes: int64(o.MaxPendingBytes),
		quit:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	go q.work()
	return q
}

// Offer queues e, or drops it (counted and logged) when the queue is full
// or closed. The queue owns e from now on.
func (q *Inbox) Offer(e *broker.Event) {
	q.Received()
	n := int64(len(e.Body))
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.Dropped(1, false)
		return
	}
	if q.bytes.Add(n) > q.maxBytes {
		q.bytes.Add(-n)
		q.Dropped(1, true)
		return
	}
	select {
	case q.ch <- e:
	default:
		q.bytes.Add(-n)
		q.Dropped(1, true)
	}
}

func (q *Inbox) work() {
	defer close(q.exited)
	for {
		select {
		case <-q.quit:
			q.dropRest()
			return
		case e, ok := <-q.ch:
			if !ok {
				return
			}
			q.bytes.Add(-int64(len(e.Body)))
			q.Run(e)
		}
	}
}

// dropRest counts what is left in the queue as dropped.
func (q *Inbox) dropRest() {
	n := 0
	for {
		select {
		case e, ok := <-q.ch:
			if !ok {
				q.Dropped(n, false)
				return
			}
			q.bytes.Add(-int64(len(e.Body)))
			n++
		default:
			q.Dropped(n, false)
			return
		}
	}
}

// Stats returns the counters with the number of queued messages.
func (q *Inbox) Stats() broker.Stats {
	s := q.Runner.Stats()
	s.Pending = uint64(len(q.ch))
	return s
}

// closeIntake makes Offer drop from now on; the worker ends once the queue
// is empty.
func (q *Inbox) closeIntake() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// Stop ends the subscription at once: queued messages are dropped, the
// handler's context is cancelled, and a running handler is waited for until
// ctx ends.
func (q *Inbox) Stop(ctx context.Context) error {
	q.closeIntake()
	q.once.Do(func() { close(q.quit) })
	if err := q.Runner.Stop(ctx); err != nil {
		return err
	}
	<-q.exited // quick: the handler never runs again, the rest is counted
	return nil
}

// Drain takes no new message and lets the handler work through the queue
// until it is empty or ctx ends; then it stops as Stop does.
func (q *Inbox) Drain(ctx context.Context) error {
	q.closeIntake()
	select {
	case <-q.exited:
	case <-ctx.Done():
	}
	return q.Stop(ctx)
}
