package server

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/codec"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry"
)

// SubscriberEndpoint is the name under which subscriptions are published
// with the endpoints (go-micro names a function subscriber so); their
// metadata says what they listen to: subscriber=true, topic, queue.
const SubscriberEndpoint = "Func"

var eventType = reflect.TypeFor[*broker.Event]()

// Subscription is a handler subscribed to a topic with Server.Subscribe.
type Subscription struct {
	s     *Server
	topic string
	queue string
	opts  []broker.SubscribeOption
	h     broker.Handler
	info  *registry.Endpoint

	mu      sync.Mutex
	sub     broker.Subscriber // nil until the server starts
	removed bool
}

// Topic returns the subscribed topic.
func (x *Subscription) Topic() string { return x.topic }

// Queue returns the queue group, or "".
func (x *Subscription) Queue() string { return x.queue }

// Stats returns the subscription's counters (zero before the server
// starts).
func (x *Subscription) Stats() broker.Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.sub == nil {
		return broker.Stats{}
	}
	return x.sub.Stats()
}

// Subscribe calls handler for each message published to topic, from the
// server's start (or at once if it runs), until Unsubscribe or the end of
// the broker's connection. handler is one of
//
//	func(ctx context.Context, msg *T) error    // T: a protobuf message, or any Go type for JSON
//	func(ctx context.Context, msg T) error
//	func(ctx context.Context, e *broker.Event) error   // the raw message
//
// The body is decoded by the message's Content-Type (application/json when
// it has none; application/protobuf); one that cannot be decoded is logged
// with its topic and size, counted (Stats().Undecodable) and dropped. The
// handler's context carries the message's headers as metadata (package
// metadata), go-micro's Micro-Topic and Micro-Id included. Errors and
// panics of the handler are counted and logged; see package broker for
// the guarantees. With broker.WithQueue, each message goes to one member
// of the queue group.
//
// The subscription is published with the service's endpoints, under the
// name SubscriberEndpoint with metadata subscriber=true, topic and queue,
// and the request schema of T. Subscribing while the server runs
// registers the node again at once, so the registry shows it.
func (s *Server) Subscribe(ctx context.Context, topic string, handler any, opts ...broker.SubscribeOption) (*Subscription, error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("server %s: subscribe: %w", s.opts.Name, err)
	}
	o, err := broker.NewSubscribeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("server %s: subscribe to %s: %w", s.opts.Name, topic, err)
	}
	h, req, err := subscriberHandler(topic, handler)
	if err != nil {
		return nil, fmt.Errorf("server %s: subscribe to %s: %w", s.opts.Name, topic, err)
	}
	if s.opts.Broker == nil {
		return nil, fmt.Errorf("server %s: subscribe to %s: the server has no broker (server.WithBroker; framework.Service gives it one)", s.opts.Name, topic)
	}
	md := map[string]string{"subscriber": "true", "topic": topic}
	if o.Queue != "" {
		md["queue"] = o.Queue
	}
	x := &Subscription{
		s: s, topic: topic, queue: o.Queue, opts: slices.Clone(opts), h: h,
		info: &registry.Endpoint{Name: SubscriberEndpoint, Request: req, Metadata: md},
	}
	s.mu.Lock()
	s.subs = append(slices.Clip(s.subs), x)
	running := s.srv != nil
	s.mu.Unlock()
	if !running {
		return x, nil
	}
	if err := x.start(ctx); err != nil {
		s.drop(x)
		return nil, err
	}
	if err := s.Register(ctx); err != nil {
		slog.Warn("register failed; will retry", "service", s.opts.Name, "err", err)
	}
	return x, nil
}

// start makes the broker subscription.
func (x *Subscription) start(ctx context.Context) error {
	sub, err := x.s.opts.Broker.Subscribe(ctx, x.topic, x.h, x.opts...)
	if err != nil {
		return fmt.Errorf("server %s: subscribe to %s: %w", x.s.opts.Name, x.topic, err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.removed { // unsubscribed meanwhile
		return sub.Unsubscribe(ctx)
	}
	x.sub = sub
	return nil
}

// Unsubscribe ends the subscription (see broker.Subscriber) and takes it
// out of the endpoints; a running server registers again at once.
func (x *Subscription) Unsubscribe(ctx context.Context) error {
	x.mu.Lock()
	if x.removed {
		x.mu.Unlock()
		return nil
	}
	x.removed = true
	sub := x.sub
	x.mu.Unlock()
	running := x.s.drop(x)
	var err error
	if sub != nil {
		err = sub.Unsubscribe(ctx)
	}
	if running {
		if rerr := x.s.Register(ctx); rerr != nil {
			slog.Warn("register failed; will retry", "service", x.s.opts.Name, "err", rerr)
		}
	}
	return err
}

// drop takes x out of the server's subscriptions and reports whether the
// server runs.
func (s *Server) drop(x *Subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = slices.DeleteFunc(slices.Clone(s.subs), func(y *Subscription) bool { return y == x })
	return s.srv != nil
}

// startSubscriptions makes the broker subscriptions of a starting server;
// on failure it undoes those made.
func (s *Server) startSubscriptions(ctx context.Context, subs []*Subscription) error {
	for i, x := range subs {
		if err := x.start(ctx); err != nil {
			for _, y := range subs[:i] {
				y.mu.Lock()
				sub := y.sub
				y.sub = nil
				y.mu.Unlock()
				_ = sub.Unsubscribe(ctx)
			}
			return err
		}
	}
	return nil
}

// subscriberEndpoints returns the published form of the subscriptions,
// sorted by topic and queue.
func subscriberEndpoints(subs []*Subscription) []*registry.Endpoint {
	out := make([]*registry.Endpoint, len(subs))
	for i, x := range subs {
		out[i] = x.info
	}
	slices.SortStableFunc(out, func(a, b *registry.Endpoint) int {
		if c := strings.Compare(a.Metadata["topic"], b.Metadata["topic"]); c != 0 {
			return c
		}
		return strings.Compare(a.Metadata["queue"], b.Metadata["queue"])
	})
	return out
}

// subscriberHandler checks handler's form and returns the broker handler
// that decodes each message for it, with the schema of what it takes.
func subscriberHandler(topic string, handler any) (broker.Handler, *registry.Value, error) {
	const form = "want func(context.Context, *T) error, func(context.Context, T) error or func(context.Context, *broker.Event) error"
	if handler == nil {
		return nil, nil, fmt.Errorf("%w: nil handler", broker.ErrInvalid)
	}
	if raw, ok := handler.(func(context.Context, *broker.Event) error); ok {
		return func(ctx context.Context, e *broker.Event) error {
			return raw(metadata.NewContext(ctx, e.Header), e)
		}, &registry.Value{Name: "Event", Type: "broker.Event"}, nil
	}
	v := reflect.ValueOf(handler)
	t := v.Type()
	if t.Kind() != reflect.Func || t.NumIn() != 2 || t.NumOut() != 1 || t.In(0) != contextType || t.Out(0) != errorType {
		return nil, nil, fmt.Errorf("%w handler %T: %s", broker.ErrInvalid, handler, form)
	}
	arg := t.In(1)
	if arg == eventType {
		return nil, nil, fmt.Errorf("%w handler %T: %s", broker.ErrInvalid, handler, form) // a named func type of the raw form
	}
	elem, ptr := arg, arg.Kind() == reflect.Pointer
	if ptr {
		elem = arg.Elem()
	}
	h := func(ctx context.Context, e *broker.Event) error {
		c, err := codec.For(contentType(e.Header))
		if err != nil {
			return fmt.Errorf("%w: %w", broker.ErrUndecodable, err)
		}
		msg := reflect.New(elem)
		if err := c.Unmarshal(e.Body, msg.Interface()); err != nil {
			return fmt.Errorf("%w: not a %s in %s: %w", broker.ErrUndecodable, elem, c.ContentType(), err)
		}
		if !ptr {
			msg = msg.Elem()
		}
		out := v.Call([]reflect.Value{reflect.ValueOf(metadata.NewContext(ctx, e.Header)), msg})
		err, _ = out[0].Interface().(error)
		return err
	}
	return h, schemaOf(reflect.PointerTo(elem)), nil
}

// contentType returns the Content-Type header of a message, whatever the
// case of its name.
func contentType(h map[string]string) string { return broker.HeaderValue(h, "Content-Type") }
