// Package brokertest is the conformance suite of broker.Broker. Every
// implementation runs it from its own tests, against real servers where
// the broker has one:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) brokertest.Bus {
//			bus := memory.NewBus()
//			return func(t *testing.T) broker.Broker { return memory.New(memory.WithBus(bus)) }
//		})
//	}
//
// A Bus makes brokers that reach each other, as the processes of one
// system do; the suite plays publisher and subscribers with several of
// them. It pins down what the package doc of broker promises:
//
//   - the life cycle: nothing before Connect or after Disconnect
//     (ErrNotConnected), both idempotent;
//   - topics and queue group names validated alike everywhere (ErrInvalid);
//   - every plain subscriber gets each message once, headers and body
//     intact, with its topic; one member of each queue group gets it;
//   - messages of one publisher reach a subscriber in the order published;
//   - an event is the handler's own, and the publisher may reuse its
//     message at once;
//   - after Unsubscribe returns the handler is never called again, and a
//     running handler's context is cancelled;
//   - a slow handler fills a bounded queue, the rest is dropped and
//     counted: Received = Handled + Failed + Panicked + Undecodable +
//     Dropped + Pending;
//   - errors, ErrUndecodable and panics of a handler are counted and the
//     subscription goes on;
//   - Disconnect lets queued messages be handled;
//   - subscribing and unsubscribing at run time, many times, is cheap and
//     leaves nothing behind;
//   - a broker.Flusher's Flush: ErrNotConnected before Connect and after
//     Disconnect; once the publisher's Flush and then the subscriber's
//     have returned, the subscription has received every message
//     published before (counted in its Stats, without waiting);
//   - with Options.Restart, a server restart: subscriptions come back by
//     themselves; with Options.Unreachable, Connect to nothing fails with
//     ErrUnavailable when its context ends.
//
// Brokers may be eventually consistent about new subscriptions (the http
// broker's publishers learn of subscribers through a registry watch), so
// the suite makes sure a subscription is known before it counts on it: it
// publishes probe messages until each subscriber has seen one, and leaves
// probes out of every count. Nothing asserts how fast anything happens.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker"
)

// Bus returns a new broker, not connected, that reaches the other brokers
// of the same Bus.
type Bus func(t *testing.T) broker.Broker

// Options tune the suite to the broker under test.
type Options struct {
	// Wait bounds every wait for a condition. Default 20s.
	Wait time.Duration
	// Restart restarts the broker's server (nats-server, mosquitto), on the
	// same address. Nil skips the restart test.
	Restart func(t *testing.T)
	// Unreachable returns a broker whose server does not answer. Nil skips
	// the test of Connect giving up.
	Unreachable func(t *testing.T) broker.Broker
}

// Option sets an Options field.
type Option func(*Options)

// WithWait sets how long the suite waits for a condition before failing.
func WithWait(d time.Duration) Option { return func(o *Options) { o.Wait = d } }

// WithRestart enables the server restart test.
func WithRestart(f func(t *testing.T)) Option { return func(o *Options) { o.Restart = f } }

// WithUnreachable enables the test of Connect to a server that is not
// there.
func WithUnreachable(f func(t *testing.T) broker.Broker) Option {
	return func(o *Options) { o.Unreachable = f }
}

// Run runs the suite; newBus is called once per test for a fresh bus.
func Run(t *testing.T, newBus func(t *testing.T) Bus, opts ...Option) {
	o := Options{Wait: 20 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	tests := []struct {
		name string
		fn   func(*suite)
	}{
		{"Lifecycle", (*suite).lifecycle},
		{"Invalid", (*suite).invalid},
		{"Delivery", (*suite).delivery},
		{"QueueGroups", (*suite).queueGroups},
		{"Order", (*suite).order},
		{"Isolation", (*suite).isolation},
		{"Unsubscribe", (*suite).unsubscribe},
		{"UnsubscribeCancels", (*suite).unsubscribeCancels},
		{"SlowSubscriber", (*suite).slowSubscriber},
		{"HandlerFailures", (*suite).handlerFailures},
		{"DisconnectDrains", (*suite).disconnectDrains},
		{"Churn", (*suite).churn},
		{"ConcurrentPublishers", (*suite).concurrentPublishers},
		{"Flush", (*suite).flush},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(&suite{t: t, bus: newBus(t), o: o})
		})
	}
	if o.Restart != nil {
		t.Run("Restart", func(t *testing.T) {
			(&suite{t: t, bus: newBus(t), o: o}).restart()
		})
	}
	if o.Unreachable != nil {
		t.Run("Unreachable", func(t *testing.T) {
			(&suite{t: t, o: o}).unreachable()
		})
	}
}

type suite struct {
	t   *testing.T
	bus Bus
	o   Options
}

// ctx returns a context bounded by the suite's wait.
func (s *suite) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
	s.t.Cleanup(cancel)
	return ctx
}

// connected returns a new connected broker of the bus, disconnected when
// the test ends.
func (s *suite) connected() broker.Broker {
	s.t.Helper()
	b := s.bus(s.t)
	if err := b.Connect(s.ctx()); err != nil {
		s.t.Fatalf("%s: Connect: %v", b, err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
		defer cancel()
		if err := b.Disconnect(ctx); err != nil {
			s.t.Errorf("%s: Disconnect: %v", b, err)
		}
	})
	return b
}

// topic returns a topic name no other test uses, on a shared server too.
func topic(name string) string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return "brokertest." + hex.EncodeToString(b[:]) + "." + name
}

// probeHeader marks the messages the suite sends to learn that a
// subscription is known; collectors leave them out.
const probeHeader = "Brokertest-Probe"

// collector records the non-probe events a handler gets.
type collector struct {
	mu     sync.Mutex
	events []*broker.Event
	probes int
	fences map[string]bool // Fence headers of the probes seen
	change chan struct{}   // closed and replaced on each event
	h      broker.Handler
}

func newCollector() *collector {
	c := &collector{change: make(chan struct{})}
	c.h = c.handle
	return c
}

func (c *collector) handle(_ context.Context, e *broker.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := e.Header[probeHeader]; ok {
		c.probes++
		if f := e.Header[fenceHeader]; f != "" {
			if c.fences == nil {
				c.fences = map[string]bool{}
			}
			c.fences[f] = true
		}
	} else {
		c.events = append(c.events, e)
	}
	close(c.change)
	c.change = make(chan struct{})
	return nil
}

func (c *collector) snapshot() (events []*broker.Event, probes int, change <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events), c.probes, c.change
}

func (c *collector) count() int {
	ev, _, _ := c.snapshot()
	return len(ev)
}

// wait waits until cond holds on the collector's events.
func (s *suite) wait(c *collector, what string, cond func(events []*broker.Event) bool) []*broker.Event {
	s.t.Helper()
	deadline := time.NewTimer(s.o.Wait)
	defer deadline.Stop()
	for {
		ev, _, change := c.snapshot()
		if cond(ev) {
			return ev
		}
		select {
		case <-change:
		case <-deadline.C:
			s.t.Fatalf("timed out after %v waiting until %s (have %d events)", s.o.Wait, what, len(ev))
		}
	}
}

// waitCount waits until c has n events.
func (s *suite) waitCount(c *collector, n int) []*broker.Event {
	s.t.Helper()
	return s.wait(c, fmt.Sprintf("%d messages arrived", n), func(ev []*broker.Event) bool { return len(ev) >= n })
}

// known publishes probes on topic from pub until every collector has seen
// one: from then on, each of their subscriptions is known to publishers.
func (s *suite) known(pub broker.Broker, topic string, cs ...*collector) {
	s.t.Helper()
	deadline := time.Now().Add(s.o.Wait)
	for i := 0; ; i++ {
		all := true
		for _, c := range cs {
			if _, p, _ := c.snapshot(); p == 0 {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v: probes published on %s by %s never reached every subscriber", s.o.Wait, topic, pub)
		}
		err := pub.Publish(s.ctx(), topic, &broker.Message{Header: map[string]string{probeHeader: strconv.Itoa(i)}})
		if err != nil && !errors.Is(err, broker.ErrUnavailable) {
			s.t.Fatalf("publishing a probe on %s: %v", topic, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fenceHeader marks the probe fence sends.
const fenceHeader = "Brokertest-Fence"

// fence publishes one probe on topic from pub and waits until c has it: as
// messages of one publisher arrive in order, every earlier probe has
// arrived too, so counters read afterwards hold no probe to come.
func (s *suite) fence(pub broker.Broker, topic string, c *collector) {
	s.t.Helper()
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	id := hex.EncodeToString(b[:])
	s.publish(pub, topic, &broker.Message{Header: map[string]string{probeHeader: "fence", fenceHeader: id}})
	deadline := time.NewTimer(s.o.Wait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		seen, change := c.fences[id], c.change
		c.mu.Unlock()
		if seen {
			return
		}
		select {
		case <-change:
		case <-deadline.C:
			s.t.Fatalf("timed out after %v waiting for the fence probe on %s", s.o.Wait, topic)
		}
	}
}

// settled waits until sub's counters account for every message received
// (a handler that has just returned is counted a moment later) and returns
// them.
func (s *suite) settled(sub broker.Subscriber) broker.Stats {
	s.t.Helper()
	deadline := time.Now().Add(s.o.Wait)
	for {
		st := sub.Stats()
		if st.Pending == 0 && st.Handled+st.Failed+st.Panicked+st.Undecodable+st.Dropped == st.Received {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for the counters to settle: %+v", s.o.Wait, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *suite) subscribe(b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscriber {
	s.t.Helper()
	sub, err := b.Subscribe(s.ctx(), topic, h, opts...)
	if err != nil {
		s.t.Fatalf("%s: Subscribe(%s): %v", b, topic, err)
	}
	if sub.Topic() != topic {
		s.t.Errorf("Topic() = %q, want %q", sub.Topic(), topic)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
		defer cancel()
		_ = sub.Unsubscribe(ctx)
	})
	return sub
}

func (s *suite) publish(b broker.Broker, topic string, m *broker.Message) {
	s.t.Helper()
	if err := b.Publish(s.ctx(), topic, m); err != nil {
		s.t.Fatalf("%s: Publish(%s): %v", b, topic, err)
	}
}

// msg returns a numbered message.
func msg(i int) *broker.Message {
	return &broker.Message{
		Header: map[string]string{"Content-Type": "text/plain", "Seq": strconv.Itoa(i)},
		Body:   []byte("message " + strconv.Itoa(i)),
	}
}

func seq(t *testing.T, e *broker.Event) int {
	t.Helper()
	n, err := strconv.Atoi(e.Header["Seq"])
	if err != nil {
		t.Fatalf("event without a Seq header: %+v", e)
	}
	return n
}

func (s *suite) lifecycle() {
	t := s.t
	b := s.bus(t)
	if b.String() == "" {
		t.Error("String() is empty")
	}
	ctx := s.ctx()
	nop := func(context.Context, *broker.Event) error { return nil }
	if err := b.Publish(ctx, topic("x"), msg(0)); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish before Connect = %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe(ctx, topic("x"), nop); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Subscribe before Connect = %v, want ErrNotConnected", err)
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatalf("second Connect: %v", err)
	}
	sub, err := b.Subscribe(ctx, topic("x"), nop)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := b.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if err := b.Disconnect(ctx); err != nil {
		t.Fatalf("second Disconnect: %v", err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Errorf("Unsubscribe after Disconnect: %v", err)
	}
	if err := b.Publish(ctx, topic("x"), msg(0)); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish after Disconnect = %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe(ctx, topic("x"), nop); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Subscribe after Disconnect = %v, want ErrNotConnected", err)
	}
	if err := b.Connect(ctx); err == nil {
		t.Error("Connect after Disconnect succeeded; a broker is connected once")
	}
}

// flush: for a broker.Flusher, the order Flush promises. A broker that is
// no Flusher passes.
func (s *suite) flush() {
	t := s.t
	b, ok := s.bus(t).(broker.Flusher)
	if !ok {
		t.Log("the broker is no broker.Flusher")
		return
	}
	if err := b.Flush(s.ctx()); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Flush before Connect = %v, want ErrNotConnected", err)
	}
	pub, subB := s.connected(), s.connected()
	tp := topic("flush")
	c := newCollector()
	sub := s.subscribe(subB, tp, c.h)
	s.known(pub, tp, c)
	s.fence(pub, tp, c)
	before := s.settled(sub).Received
	const n = 50
	for round := range 3 {
		for i := range n {
			s.publish(pub, tp, msg(round*n+i))
		}
		if err := pub.(broker.Flusher).Flush(s.ctx()); err != nil {
			t.Fatalf("publisher's Flush: %v", err)
		}
		if err := subB.(broker.Flusher).Flush(s.ctx()); err != nil {
			t.Fatalf("subscriber's Flush: %v", err)
		}
		// Read at once: no wait for the messages to arrive. (At least: a
		// broker may count a message just handled as pending a moment
		// longer, see nats.)
		if got, want := sub.Stats().Received-before, uint64((round+1)*n); got < want {
			t.Fatalf("round %d: once both flushed, the subscription had received %d messages, want %d", round, got, want)
		}
	}
	s.waitCount(c, 3*n)
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
	defer cancel()
	if err := pub.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if err := pub.(broker.Flusher).Flush(s.ctx()); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Flush after Disconnect = %v, want ErrNotConnected", err)
	}
}

func (s *suite) invalid() {
	t := s.t
	b := s.connected()
	ctx := s.ctx()
	nop := func(context.Context, *broker.Event) error { return nil }
	for _, bad := range []string{"", "a..b", ".a", "a.", "a b", "a/b", "a.*", "a.>", "a+", "#", "$SYS.x", "ü", string(make([]byte, broker.MaxNameLen+1))} {
		if err := b.Publish(ctx, bad, msg(0)); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("Publish(%q) = %v, want ErrInvalid", bad, err)
		}
		if _, err := b.Subscribe(ctx, bad, nop); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalid", bad, err)
		}
		if _, err := b.Subscribe(ctx, topic("q"), nop, broker.WithQueue(bad)); bad != "" && !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("Subscribe(WithQueue(%q)) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, h := range []map[string]string{{"": "x"}, {"Bad Name": "x"}, {"Bad:Name": "x"}, {"X": "a\r\nInjected: 1"}, {"X": "nul\x00"}, {"X": string(make([]byte, broker.MaxHeaderBytes))}} {
		if err := b.Publish(ctx, topic("h"), &broker.Message{Header: h}); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("Publish(header %.40q) = %v, want ErrInvalid", h, err)
		}
	}
	if _, err := b.Subscribe(ctx, topic("q"), nop, broker.WithQueue(broker.BroadcastVersion)); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Subscribe(WithQueue(%q)) = %v, want ErrInvalid", broker.BroadcastVersion, err)
	}
	if _, err := b.Subscribe(ctx, topic("nil"), nil); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Subscribe(nil handler) = %v, want ErrInvalid", err)
	}
	for _, o := range []broker.SubscribeOption{broker.WithMaxPending(0), broker.WithMaxPendingBytes(-1)} {
		if _, err := b.Subscribe(ctx, topic("q"), nop, o); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("Subscribe with a bad bound = %v, want ErrInvalid", err)
		}
	}
	// A valid name of the full length and of every allowed character.
	long := make([]byte, broker.MaxNameLen)
	for i := range long {
		long[i] = "aZ09-_"[i%6]
	}
	if err := b.Publish(ctx, string(long), msg(0)); err != nil {
		t.Errorf("Publish(%d-byte topic) = %v", len(long), err)
	}
}

func (s *suite) delivery() {
	t := s.t
	pub, b1, b2 := s.connected(), s.connected(), s.connected()
	tp := topic("delivery")
	c1, c2, c3, self := newCollector(), newCollector(), newCollector(), newCollector()
	s.subscribe(b1, tp, c1.h)
	s.subscribe(b2, tp, c2.h)
	s.subscribe(b2, tp, c3.h) // two subscriptions of one broker each get every message
	// A context without a deadline is fine too.
	bg, err := pub.Subscribe(context.Background(), tp, self.h)
	if err != nil {
		t.Fatalf("Subscribe with context.Background(): %v", err)
	}
	t.Cleanup(func() { _ = bg.Unsubscribe(context.Background()) })
	other := newCollector()
	s.subscribe(b1, topic("other"), other.h)
	s.known(pub, tp, c1, c2, c3, self)

	const n = 20
	for i := range n {
		m := msg(i)
		if i == 0 {
			m.Header = nil // no headers at all
			m.Body = []byte{}
		}
		if i == 1 {
			m.Body = make([]byte, 256<<10) // a larger body, every byte value
			for j := range m.Body {
				m.Body[j] = byte(j)
			}
			m.Header["Seq"] = "1"
		}
		s.publish(pub, tp, m)
	}
	for name, c := range map[string]*collector{"b1": c1, "b2 first": c2, "b2 second": c3, "publisher's own": self} {
		ev := s.waitCount(c, n)
		got := map[string]int{}
		for _, e := range ev {
			if e.Topic != tp {
				t.Errorf("%s: event topic %q, want %q", name, e.Topic, tp)
			}
			if len(e.Header) == 0 {
				if len(e.Body) != 0 {
					t.Errorf("%s: the message without headers came with body %q", name, e.Body)
				}
				got["0"]++
				continue
			}
			sq := e.Header["Seq"]
			got[sq]++
			if e.Header["Content-Type"] != "text/plain" {
				t.Errorf("%s: message %s: headers %v", name, sq, e.Header)
			}
			if sq == "1" {
				if len(e.Body) != 256<<10 || e.Body[1000] != byte(1000%256) {
					t.Errorf("%s: the 256 KiB body came as %d bytes", name, len(e.Body))
				}
			} else if string(e.Body) != "message "+sq {
				t.Errorf("%s: message %s has body %q", name, sq, e.Body)
			}
		}
		for i := range n {
			if got[strconv.Itoa(i)] != 1 {
				t.Errorf("%s: message %d arrived %d times, want once", name, i, got[strconv.Itoa(i)])
			}
		}
	}
	if n := other.count(); n != 0 {
		t.Errorf("a subscriber of another topic got %d messages", n)
	}
}

func (s *suite) queueGroups() {
	t := s.t
	pub, b1, b2 := s.connected(), s.connected(), s.connected()
	tp := topic("queue")
	workers := []*collector{newCollector(), newCollector(), newCollector()}
	s.subscribe(b1, tp, workers[0].h, broker.WithQueue("workers"))
	s.subscribe(b2, tp, workers[1].h, broker.WithQueue("workers"))
	s.subscribe(b2, tp, workers[2].h, broker.WithQueue("workers"))
	auditors := []*collector{newCollector(), newCollector()}
	s.subscribe(b1, tp, auditors[0].h, broker.WithQueue("auditors"))
	s.subscribe(b2, tp, auditors[1].h, broker.WithQueue("auditors"))
	plain := newCollector()
	s.subscribe(b1, tp, plain.h)
	s.known(pub, tp, append(append([]*collector{plain}, workers...), auditors...)...)

	const n = 150
	for i := range n {
		s.publish(pub, tp, msg(i))
	}
	s.waitCount(plain, n)
	for _, g := range []struct {
		name    string
		members []*collector
	}{{"workers", workers}, {"auditors", auditors}} {
		total := func() int {
			sum := 0
			for _, c := range g.members {
				sum += c.count()
			}
			return sum
		}
		deadline := time.Now().Add(s.o.Wait)
		for total() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		seen := map[int]int{}
		for i, c := range g.members {
			ev, _, _ := c.snapshot()
			if len(ev) == 0 {
				t.Errorf("group %s: member %d got none of %d messages", g.name, i, n)
			}
			for _, e := range ev {
				seen[seq(t, e)]++
			}
		}
		for i := range n {
			if seen[i] != 1 {
				t.Errorf("group %s: message %d reached %d members, want exactly 1", g.name, i, seen[i])
			}
		}
	}
}

func (s *suite) order() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("order")
	c := newCollector()
	s.subscribe(b, tp, c.h)
	g := newCollector()
	s.subscribe(b, tp, g.h, broker.WithQueue("ordered"))
	s.known(pub, tp, c, g)
	const n = 500
	for i := range n {
		s.publish(pub, tp, msg(i))
	}
	for name, col := range map[string]*collector{"plain": c, "queue group": g} {
		ev := s.waitCount(col, n)
		for i, e := range ev {
			if got := seq(t, e); got != i {
				t.Fatalf("%s subscriber: message %d arrived in position %d", name, got, i)
			}
		}
	}
}

func (s *suite) isolation() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("isolation")
	mangle := func(_ context.Context, e *broker.Event) error {
		if _, probe := e.Header[probeHeader]; !probe {
			for i := range e.Body {
				e.Body[i] = 'X'
			}
			e.Header["Seq"] = "mangled"
			e.Header["Added"] = "yes"
		}
		return nil
	}
	mc := newCollector()
	s.subscribe(b, tp, func(ctx context.Context, e *broker.Event) error {
		_ = mangle(ctx, e)
		return mc.handle(ctx, e)
	})
	c := newCollector()
	s.subscribe(b, tp, c.h)
	s.known(pub, tp, mc, c)
	m := msg(7)
	s.publish(pub, tp, m)
	// The publisher reuses its message at once.
	m.Header["Seq"] = "reused"
	copy(m.Body, "REUSED!")
	s.waitCount(mc, 1)
	ev := s.waitCount(c, 1)
	if e := ev[0]; e.Header["Seq"] != "7" || string(e.Body) != "message 7" || e.Header["Added"] != "" {
		t.Errorf("a subscriber saw another's or the publisher's changes: %v %q", e.Header, e.Body)
	}
}

func (s *suite) unsubscribe() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("unsubscribe")
	gone, control := newCollector(), newCollector()
	sub := s.subscribe(b, tp, gone.h)
	s.subscribe(b, tp, control.h)
	s.known(pub, tp, gone, control)
	s.publish(pub, tp, msg(0))
	s.waitCount(gone, 1)
	if err := sub.Unsubscribe(s.ctx()); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := sub.Unsubscribe(s.ctx()); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	for i := 1; i <= 10; i++ {
		s.publish(pub, tp, msg(i))
	}
	s.waitCount(control, 11)
	if n := gone.count(); n != 1 {
		t.Errorf("the handler got %d messages after Unsubscribe returned", n-1)
	}
	// A new subscription on the same topic works.
	again := newCollector()
	s.subscribe(b, tp, again.h)
	s.known(pub, tp, again)
	s.publish(pub, tp, msg(99))
	s.waitCount(again, 1)
}

func (s *suite) unsubscribeCancels() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("cancel")
	started, returned := make(chan struct{}, 1), make(chan error, 1)
	probe := newCollector()
	sub := s.subscribe(b, tp, func(ctx context.Context, e *broker.Event) error {
		if _, ok := e.Header[probeHeader]; ok {
			return probe.handle(ctx, e)
		}
		started <- struct{}{}
		<-ctx.Done()
		returned <- ctx.Err()
		return ctx.Err()
	})
	s.known(pub, tp, probe)
	s.publish(pub, tp, msg(0))
	select {
	case <-started:
	case <-time.After(s.o.Wait):
		t.Fatal("the handler never started")
	}
	if err := sub.Unsubscribe(s.ctx()); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler context ended with %v, want context.Canceled", err)
		}
	default:
		t.Fatal("Unsubscribe returned while the handler still ran")
	}
}

func (s *suite) slowSubscriber() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("slow")
	release := make(chan struct{})
	probe, slow := newCollector(), newCollector()
	const maxPending = 5
	sub := s.subscribe(b, tp, func(ctx context.Context, e *broker.Event) error {
		if _, ok := e.Header[probeHeader]; ok {
			return probe.handle(ctx, e)
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return slow.handle(ctx, e)
	}, broker.WithMaxPending(maxPending))
	fast := newCollector()
	s.subscribe(b, tp, fast.h)
	s.known(pub, tp, probe, fast)
	s.fence(pub, tp, probe)
	base := s.settled(sub)
	const n = 60
	for i := range n {
		s.publish(pub, tp, msg(i))
	}
	s.waitCount(fast, n) // the fast one is not held up by the slow one
	received := func() uint64 { return sub.Stats().Received - base.Received }
	deadline := time.Now().Add(s.o.Wait)
	for received() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := sub.Stats()
	if got := st.Received - base.Received; got != n {
		t.Fatalf("Received went up by %d, want %d: %+v", got, n, st)
	}
	if st.Pending > maxPending {
		t.Errorf("Pending = %d, over the bound %d", st.Pending, maxPending)
	}
	if st.Dropped == 0 {
		t.Errorf("nothing dropped with %d messages for a blocked handler and a queue of %d: %+v", n, maxPending, st)
	}
	close(release)
	var final broker.Stats
	deadline = time.Now().Add(s.o.Wait)
	for {
		final = sub.Stats()
		if final.Pending == 0 && final.Handled+final.Dropped == final.Received || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	handled := final.Handled - base.Handled
	if final.Handled+final.Failed+final.Panicked+final.Undecodable+final.Dropped+final.Pending != final.Received {
		t.Errorf("counters do not add up: %+v", final)
	}
	if handled < 1 || handled > maxPending+1 || int(handled) != slow.count() {
		t.Errorf("handled %d (handler saw %d), want 1..%d: %+v", handled, slow.count(), maxPending+1, final)
	}
	// Still alive: later messages go through.
	s.publish(pub, tp, msg(n))
	s.wait(slow, "a message after the backlog", func(ev []*broker.Event) bool {
		return len(ev) > 0 && seq(t, ev[len(ev)-1]) == n
	})
}

func (s *suite) handlerFailures() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("failures")
	probe, ok := newCollector(), newCollector()
	sub := s.subscribe(b, tp, func(ctx context.Context, e *broker.Event) error {
		if _, p := e.Header[probeHeader]; p {
			return probe.handle(ctx, e)
		}
		switch e.Header["Seq"] {
		case "0":
			return errors.New("refused")
		case "1":
			panic("boom")
		case "2":
			return fmt.Errorf("body: %w", broker.ErrUndecodable)
		}
		return ok.handle(ctx, e)
	})
	s.known(pub, tp, probe)
	s.fence(pub, tp, probe)
	base := s.settled(sub)
	for i := range 5 {
		s.publish(pub, tp, msg(i))
	}
	s.waitCount(ok, 2)
	st := s.settled(sub)
	if st.Failed-base.Failed != 1 || st.Panicked-base.Panicked != 1 || st.Undecodable-base.Undecodable != 1 || st.Handled-base.Handled != 2 {
		t.Errorf("stats after an error, a panic, an undecodable and two good messages: %+v (before: %+v)", st, base)
	}
}

func (s *suite) disconnectDrains() {
	t := s.t
	pub := s.connected()
	b := s.bus(t)
	if err := b.Connect(s.ctx()); err != nil {
		t.Fatal(err)
	}
	tp := topic("drain")
	release := make(chan struct{})
	probe, c := newCollector(), newCollector()
	sub, err := b.Subscribe(s.ctx(), tp, func(ctx context.Context, e *broker.Event) error {
		if _, p := e.Header[probeHeader]; p {
			return probe.handle(ctx, e)
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return c.handle(ctx, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.known(pub, tp, probe)
	s.fence(pub, tp, probe)
	base := s.settled(sub).Received
	const n = 5
	for i := range n {
		s.publish(pub, tp, msg(i))
	}
	deadline := time.Now().Add(s.o.Wait)
	for sub.Stats().Received-base < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Disconnect waits for the queued messages, which wait for release.
	done := make(chan error, 1)
	go func() { done <- b.Disconnect(s.ctx()) }()
	time.Sleep(50 * time.Millisecond) // not needed for correctness: lets Disconnect be waiting, most often
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if got := c.count(); got != n {
		t.Errorf("Disconnect returned with %d of %d queued messages handled", got, n)
	}
}

func (s *suite) churn() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("churn")
	for i := range 20 {
		c := newCollector()
		var opts []broker.SubscribeOption
		if i%2 == 1 {
			opts = append(opts, broker.WithQueue("churn"))
		}
		sub, err := b.Subscribe(s.ctx(), tp, c.h, opts...)
		if err != nil {
			t.Fatalf("Subscribe #%d: %v", i, err)
		}
		s.known(pub, tp, c)
		s.publish(pub, tp, msg(i))
		s.waitCount(c, 1)
		if err := sub.Unsubscribe(s.ctx()); err != nil {
			t.Fatalf("Unsubscribe #%d: %v", i, err)
		}
	}
	// With none left, publishing is still fine.
	s.publish(pub, tp, msg(100))
}

func (s *suite) concurrentPublishers() {
	t := s.t
	pubs := []broker.Broker{s.connected(), s.connected()}
	b := s.connected()
	tp := topic("concurrent")
	c := newCollector()
	s.subscribe(b, tp, c.h, broker.WithMaxPending(10000))
	s.known(pubs[0], tp, c)
	s.known(pubs[1], tp, c)
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := pubs[g%2].Publish(s.ctx(), tp, msg(g*each+i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	ev := s.waitCount(c, goroutines*each)
	seen := map[int]bool{}
	for _, e := range ev {
		seen[seq(t, e)] = true
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d distinct messages of %d", len(seen), goroutines*each)
	}
}

func (s *suite) restart() {
	t := s.t
	pub, b := s.connected(), s.connected()
	tp := topic("restart")
	plain, group := newCollector(), newCollector()
	s.subscribe(b, tp, plain.h)
	s.subscribe(b, tp, group.h, broker.WithQueue("restart"))
	s.known(pub, tp, plain, group)
	s.publish(pub, tp, msg(0))
	s.waitCount(plain, 1)
	s.waitCount(group, 1)

	s.o.Restart(t)

	// Subscriptions come back by themselves; publishing works again. A
	// publish while the connection is still down fails (ErrUnavailable)
	// and is tried again; one that went may have been lost with the old
	// connection: at most once.
	late := newCollector()
	s.subscribe(b, tp, late.h) // subscribing right after a restart works too
	deadline := time.Now().Add(s.o.Wait)
	for i := 1; plain.count() < 2 || group.count() < 2 || late.count() < 1; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: plain %d, group %d, late %d messages; want them flowing again", plain.count(), group.count(), late.count())
		}
		if err := pub.Publish(s.ctx(), tp, msg(i)); err != nil && !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("Publish after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *suite) unreachable() {
	t := s.t
	b := s.o.Unreachable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := b.Connect(ctx)
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Connect to a server that is not there = %v, want ErrUnavailable", err)
	}
	t.Logf("Connect said: %v", err)
	if err := b.Publish(context.Background(), topic("x"), msg(0)); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish after a failed Connect = %v, want ErrNotConnected", err)
	}
	_ = b.Disconnect(context.Background())
}
