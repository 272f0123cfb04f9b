// Package memory is an in-process broker, for tests and for programs made
// of one process: Publish hands a copy of the message to the queue of each
// plain subscriber of the topic and of one member of each queue group (in
// turn), and returns. Nothing crosses the process; two brokers built with
// New do not see each other. It is in the framework's broker table as
// "memory".
package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/internal/deliver"
)

// Bus is where the brokers of one process meet: what one publishes, the
// subscribers of every broker on the same bus get. New makes a bus of its
// own unless given one with WithBus.
type Bus struct {
	mu     sync.RWMutex
	topics map[string]*topic
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{topics: map[string]*topic{}} }

// topic holds the subscriptions of one topic.
type topic struct {
	plain  []*sub
	groups map[string]*group
}

// group is a queue group: one member gets each message, in turn.
type group struct {
	members []*sub
	next    atomic.Uint64
}

// Broker is an in-process broker on a Bus. The zero value is not usable;
// call New.
type Broker struct {
	bus *Bus
	log *slog.Logger

	mu        sync.Mutex
	connected bool
	closed    bool
	subs      map[*sub]bool // this broker's, for Disconnect
}

// Option configures a Broker.
type Option func(*Broker)

// WithBus puts the broker on bus, shared with other brokers (say, the
// services of one test); by default it has a bus of its own.
func WithBus(bus *Bus) Option { return func(b *Broker) { b.bus = bus } }

// WithLogger sets where the subscriptions' warnings go (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(b *Broker) { b.log = l } }

var _ broker.Broker = (*Broker)(nil)

// New returns a broker, not yet connected.
func New(opts ...Option) *Broker {
	b := &Broker{subs: map[*sub]bool{}}
	for _, o := range opts {
		o(b)
	}
	if b.bus == nil {
		b.bus = NewBus()
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	return b
}

// String returns "memory".
func (b *Broker) String() string { return "memory" }

// Connect makes the broker usable.
func (b *Broker) Connect(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("memory broker: connect: %w (it was disconnected)", broker.ErrNotConnected)
	}
	b.connected = true
	return nil
}

// Disconnect removes the broker's subscriptions from the bus and drains
// them until ctx ends.
func (b *Broker) Disconnect(ctx context.Context) error {
	b.mu.Lock()
	subs := make([]*sub, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.subs, b.closed = nil, true
	b.mu.Unlock()

	for _, s := range subs {
		b.bus.remove(s)
	}
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { errs[i] = s.Drain(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (b *Broker) usable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.connected || b.closed {
		return fmt.Errorf("memory broker: %w", broker.ErrNotConnected)
	}
	return nil
}

// Publish hands a copy of m to each plain subscriber of topic and to one
// member of each of its queue groups, on the broker's bus.
func (b *Broker) Publish(_ context.Context, topicName string, m *broker.Message) error {
	if err := broker.ValidateTopic(topicName); err != nil {
		return fmt.Errorf("memory broker: publish: %w", err)
	}
	if m != nil {
		if err := broker.ValidateHeader(m.Header); err != nil {
			return fmt.Errorf("memory broker: publish to %s: %w", topicName, err)
		}
	}
	if err := b.usable(); err != nil {
		return err
	}
	b.bus.publish(topicName, m)
	return nil
}

func (bus *Bus) publish(name string, m *broker.Message) {
	bus.mu.RLock()
	defer bus.mu.RUnlock()
	t := bus.topics[name]
	if t == nil {
		return
	}
	for _, s := range t.plain {
		s.Offer(event(name, m))
	}
	for _, g := range t.groups {
		s := g.members[(g.next.Add(1)-1)%uint64(len(g.members))]
		s.Offer(event(name, m))
	}
}

// event returns the subscriber's own copy of m.
func event(topic string, m *broker.Message) *broker.Event {
	e := &broker.Event{Topic: topic}
	if m != nil {
		e.Header = maps.Clone(m.Header)
		e.Body = slices.Clone(m.Body)
	}
	return e
}

// Subscribe adds a subscription to topic.
func (b *Broker) Subscribe(_ context.Context, topicName string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if err := broker.ValidateTopic(topicName); err != nil {
		return nil, fmt.Errorf("memory broker: subscribe: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("memory broker: subscribe to %s: %w: nil handler", topicName, broker.ErrInvalid)
	}
	o, err := broker.NewSubscribeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("memory broker: subscribe to %s: %w", topicName, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.connected || b.closed {
		return nil, fmt.Errorf("memory broker: %w", broker.ErrNotConnected)
	}
	s := &sub{b: b, Inbox: deliver.NewInbox(deliver.NewRunner(topicName, o.Queue, h, b.log), o)}
	b.subs[s] = true
	b.bus.add(s)
	return s, nil
}

func (bus *Bus) add(s *sub) {
	bus.mu.Lock()
	defer bus.mu.Unlock()
	t := bus.topics[s.Topic()]
	if t == nil {
		t = &topic{groups: map[string]*group{}}
		bus.topics[s.Topic()] = t
	}
	if q := s.Queue(); q == "" {
		t.plain = append(slices.Clip(t.plain), s)
	} else {
		g := t.groups[q]
		if g == nil {
			g = &group{}
			t.groups[q] = g
		}
		g.members = append(slices.Clip(g.members), s)
	}
}

// sub is a subscription of the memory broker.
type sub struct {
	b              *Broker
	*deliver.Inbox // Topic, Queue, Stats, and the queue
}

// Unsubscribe removes the subscription and stops its deliveries.
func (s *sub) Unsubscribe(ctx context.Context) error {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	s.b.bus.remove(s)
	return s.Stop(ctx)
}

// remove takes s off the bus. The slices are replaced, never changed in
// place, so a Publish holding the old ones is not disturbed.
func (bus *Bus) remove(s *sub) {
	bus.mu.Lock()
	defer bus.mu.Unlock()
	t := bus.topics[s.Topic()]
	if t == nil {
		return
	}
	if q := s.Queue(); q == "" {
		t.plain = slices.DeleteFunc(slices.Clone(t.plain), func(x *sub) bool { return x == s })
	} else if g := t.groups[q]; g != nil {
		g.members = slices.DeleteFunc(slices.Clone(g.members), func(x *sub) bool { return x == s })
		if len(g.members) == 0 {
			delete(t.groups, q)
		}
	}
	if len(t.plain) == 0 && len(t.groups) == 0 {
		delete(bus.topics, s.Topic())
	}
}
