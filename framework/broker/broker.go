package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors of the brokers, wrapped with what happened; compare with errors.Is.
var (
	// ErrInvalid: a topic, queue group name or option that no broker
	// accepts. Nothing was published or subscribed.
	ErrInvalid = errors.New("invalid")
	// ErrNotConnected: Publish or Subscribe before Connect, or after
	// Disconnect.
	ErrNotConnected = errors.New("broker not connected")
	// ErrUnavailable: the broker's server (or, for http, a subscriber)
	// could not be reached: Connect gave up, or Publish found the connection
	// down. The message was not sent; nothing keeps it to send later.
	ErrUnavailable = errors.New("broker unavailable")
	// ErrTooLarge: a message larger than the broker takes (NATS's
	// max_payload, the http inbox's limit).
	ErrTooLarge = errors.New("message too large")
	// ErrUndecodable: a message that could not be decoded. A handler
	// returns an error wrapping it when the body is not what it expects, so
	// that the message is counted and logged as undecodable rather than as
	// a failure of the handler.
	ErrUndecodable = errors.New("undecodable message")
)

// Broker publishes messages to topics and hands them to the handlers
// subscribed to them. Implementations are safe for concurrent use.
type Broker interface {
	// Connect connects to the broker's server (nats, mqtt) or starts the
	// inbox subscribers are reached at (http). It tries again, with
	// backoff, until it succeeds or ctx ends, and then returns an error
	// wrapping ErrUnavailable that names the address and the last failure.
	// Once connected, the broker reconnects by itself whenever the
	// connection breaks, and its subscriptions come back with it.
	// Connecting a connected broker does nothing.
	Connect(ctx context.Context) error
	// Disconnect stops every subscription: no new message is taken, the
	// messages already queued are handled until ctx ends (then the
	// handlers' contexts are cancelled and the rest is dropped), and the
	// connection is closed. A broker is connected once: after Disconnect,
	// Publish and Subscribe fail with ErrNotConnected.
	Disconnect(ctx context.Context) error
	// Publish sends m to topic. It returns once the broker's server has it
	// (mqtt), once the connection has it, to write in the background (nats:
	// see Flusher), or once every subscriber found has it (http, memory); an
	// error says it did not go (ErrInvalid, ErrNotConnected,
	// ErrUnavailable, ErrTooLarge). Publishing to a topic nobody listens to
	// is not an error. m is not kept: the caller may reuse it.
	Publish(ctx context.Context, topic string, m *Message) error
	// Subscribe calls h for each message published to topic from now on
	// (see the package doc for the guarantees), until Unsubscribe or
	// Disconnect. With [WithQueue], each message goes to one member of the
	// queue group instead of to every subscriber.
	Subscribe(ctx context.Context, topic string, h Handler, opts ...SubscribeOption) (Subscriber, error)
	// String names the implementation: "memory", "http", "nats", "mqtt".
	String() string
}

// Flusher is a broker that can tell when what went through it is
// through: a capability some brokers add to Broker (nats, http, memory; not
// mqtt). Flush returns once
//
//   - every message this broker published before the call has been taken
//     in by the server, which has handed it on to the connections of the
//     subscriptions it was published for, and
//   - every message the server handed on to this broker before it
//     answered (http, memory: every message whose Publish, by any broker,
//     returned before the call) has reached its subscription here: it is
//     counted in the subscription's Stats (Received, then queued or
//     handled).
//
// So when a publisher's Flush has returned, and after that the
// subscriber's own Flush returns, the subscriber has received what the
// publisher published before its Flush. A publisher that flushes before
// it tells the subscriber something, by whatever road (an RPC's answer,
// say), and a subscriber that flushes when it hears it, so agree on what
// was published before. Both must use one
// server: in a NATS cluster the route between two servers is one more road,
// which Flush does not wait for.
//
// Per broker: nats sends a PING and waits for the server's PONG (the server
// answers once it has processed, and routed, everything the connection sent
// before, and sends the PONG after what it sent the connection before);
// http and memory deliver within Publish (it returns once each
// subscriber's inbox has the message), so their Flush only checks that the
// broker is connected. MQTT 3.1.1 gives no such order (a QoS 1 PUBACK says
// the server has the message, not that it handed it on), so the mqtt
// broker is no Flusher.
//
// An error says the order was not confirmed: ErrNotConnected, or
// ErrUnavailable when the server could not be reached or did not answer
// before ctx ended; what was published may or may not have gone. A
// wrapper of any broker (the framework service's) has Flush and returns
// an error wrapping errors.ErrUnsupported when the broker it wraps is no
// Flusher.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Message is what is published: headers and a body. The framework's
// client puts the body's Content-Type and the caller's metadata in the
// headers.
type Message struct {
	Header map[string]string
	Body   []byte
}

// HeaderValue returns the value of the header name in h, whatever the case
// of its name ("content-type" is Content-Type), or "" when h has none.
func HeaderValue(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Event is a message as a handler receives it, with the topic it came on.
// It is the handler's own: changing it changes nothing elsewhere.
type Event struct {
	Topic string
	Message
}

// Handler handles one message. Its context is cancelled when the
// subscription ends (Unsubscribe, or Disconnect once its time is up). An
// error is counted and logged, and the message is not delivered again
// (there is no redelivery: see the package doc); return one wrapping
// ErrUndecodable for a body that cannot be decoded. A panic is recovered,
// logged with its stack and counted; the subscription goes on.
type Handler func(ctx context.Context, e *Event) error

// Subscriber is one subscription.
type Subscriber interface {
	// Topic is the subscribed topic.
	Topic() string
	// Queue is the queue group, or "" for a plain subscription.
	Queue() string
	// Stats returns the subscription's counters.
	Stats() Stats
	// Unsubscribe ends the subscription: no message is handed to the
	// handler after it returns. The handler's context is cancelled, a
	// handler running now is waited for until ctx ends, and queued messages
	// are dropped. Unsubscribing twice does nothing.
	Unsubscribe(ctx context.Context) error
}

// Stats are the counters of a subscription. Once the subscription is idle,
// Received = Handled + Failed + Panicked + Undecodable + Dropped + Pending.
type Stats struct {
	// Received counts the messages that reached the subscription.
	Received uint64
	// Handled counts the messages whose handler returned nil.
	Handled uint64
	// Failed counts the messages whose handler returned an error.
	Failed uint64
	// Panicked counts the messages whose handler panicked.
	Panicked uint64
	// Undecodable counts the messages that could not be decoded, by the
	// broker (a malformed envelope) or by the handler (ErrUndecodable).
	Undecodable uint64
	// Dropped counts the messages that arrived while the subscription's
	// queue was full (a slow handler), and the queued messages an
	// Unsubscribe or Disconnect dropped.
	Dropped uint64
	// Pending is the number of messages queued now.
	Pending uint64
}

// Defaults of the subscribe options.
const (
	// DefaultMaxPending is how many messages a subscription queues while
	// its handler is busy.
	DefaultMaxPending = 1024
	// DefaultMaxPendingBytes bounds the bodies queued by a subscription.
	DefaultMaxPendingBytes = 32 << 20
)

// SubscribeOptions are the options of one Subscribe.
type SubscribeOptions struct {
	// Queue is the queue group: each message goes to one of the
	// subscriptions of the group (across processes), instead of to each.
	Queue string
	// MaxPending and MaxPendingBytes bound the messages queued while the
	// handler is busy; a message that would pass either is dropped and
	// counted (Stats.Dropped).
	MaxPending      int
	MaxPendingBytes int
}

// SubscribeOption sets a SubscribeOptions field.
type SubscribeOption func(*SubscribeOptions)

// WithQueue makes the subscription a member of the queue group name: each
// message published to the topic goes to one member of the group (and to
// every plain subscriber and every other group).
func WithQueue(name string) SubscribeOption {
	return func(o *SubscribeOptions) { o.Queue = name }
}

// WithMaxPending bounds how many messages the subscription queues while its
// handler is busy (default DefaultMaxPending).
func WithMaxPending(n int) SubscribeOption {
	return func(o *SubscribeOptions) { o.MaxPending = n }
}

// WithMaxPendingBytes bounds the size of the bodies the subscription queues
// (default DefaultMaxPendingBytes).
func WithMaxPendingBytes(n int) SubscribeOption {
	return func(o *SubscribeOptions) { o.MaxPendingBytes = n }
}

// NewSubscribeOptions applies opts to the defaults and validates the
// result: every implementation starts its Subscribe with it. The error
// wraps ErrInvalid.
func NewSubscribeOptions(opts ...SubscribeOption) (SubscribeOptions, error) {
	o := SubscribeOptions{MaxPending: DefaultMaxPending, MaxPendingBytes: DefaultMaxPendingBytes}
	for _, f := range opts {
		f(&o)
	}
	if o.Queue != "" {
		if err := ValidateQueue(o.Queue); err != nil {
			return o, err
		}
	}
	if o.MaxPending < 1 {
		return o, fmt.Errorf("%w: max pending messages %d: want at least 1", ErrInvalid, o.MaxPending)
	}
	if o.MaxPendingBytes < 1 {
		return o, fmt.Errorf("%w: max pending bytes %d: want at least 1", ErrInvalid, o.MaxPendingBytes)
	}
	return o, nil
}
