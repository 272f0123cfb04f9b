// Package broker is the framework's publish and subscribe: a [Broker]
// publishes messages (headers and a body) to topics, and hands each one to
// the handlers subscribed to the topic, or to one member of each queue
// group. The implementations, chosen by --broker (the framework's table of
// brokers) and placed by --broker_address:
//
//	memory   one process (tests; brokers on one memory.Bus)   package memory
//	http     the default: no server of its own; subscribers    package http
//	         serve an inbox and are found in the registry,
//	         wire-compatible with go-micro v1's http broker
//	nats     a NATS server or cluster (core NATS)              package nats
//	mqtt     an MQTT 3.1.1 server such as mosquitto            package mqtt
//
// Services use it through the framework: server.Subscribe(topic, handler)
// and client.Publish(ctx, topic, msg) encode and decode the body by its
// Content-Type, carry the caller's metadata as headers, and list the
// subscriptions with the service's endpoints in the registry. This package
// is the layer below, for programs that deal in raw messages.
//
// # What every broker guarantees
//
// The conformance suite (package brokertest) holds each implementation to
// this, against real servers.
//
// Delivery is at most once, everywhere: a message is handed to a
// subscription once, or not at all when something on the way is down (the
// server restarts, a subscriber's process is gone, its queue is full).
// Nothing is stored to be sent later and nothing is redelivered after a
// handler fails. (MQTT at QoS 1, the mqtt broker's default, may hand a
// message twice when a connection breaks at the wrong moment; see package
// mqtt.) Events that must not be lost belong in a store, not a broker.
//
// Ordering: the messages of one publisher on one topic reach each
// subscription in the order they were published (for http: in the order
// the Publish calls returned). Messages of different publishers interleave.
// A subscription's handler runs one message at a time, in arrival order;
// subscriptions are independent of one another, so a slow handler never
// holds up another subscription, of this process or any other.
//
// Slow subscribers: each subscription queues at most WithMaxPending
// messages (default DefaultMaxPending) and WithMaxPendingBytes of bodies
// (DefaultMaxPendingBytes) while its handler is busy. A message that finds
// the queue full is dropped and counted (Stats.Dropped), and a warning is
// logged; memory stays bounded however slow the handler and however fast
// the publishers.
//
// Handlers: one that returns an error has the message counted
// (Stats.Failed) and the error logged with the topic; the message is not
// delivered again. One that panics is recovered, the panic logged with its
// stack and counted (Stats.Panicked); the subscription goes on. The
// handler's context is cancelled when the subscription ends.
//
// Undecodable messages: a message whose envelope is malformed (an http POST
// that is not go-micro's JSON message), or whose body the handler cannot
// decode (the handler returns an error wrapping ErrUndecodable, as
// server.Subscribe's decoding does), is logged with its topic and size,
// counted (Stats.Undecodable) and dropped; the subscription goes on. Logs
// of one subscription are limited to one line a second, the next one
// saying how many were left out.
//
// Topics and queue group names are validated alike by every broker
// ([ValidateTopic], [ValidateQueue]): dot-separated parts of ASCII letters,
// digits, '-' and '_', at most 255 bytes; no wildcards. Header names and
// values are checked by [ValidateHeader]. A bad one is refused with an
// error wrapping ErrInvalid that says what is wrong, and nothing is sent.
//
// Broker down at start: Connect tries again, with backoff, until its
// context ends, then returns an error wrapping ErrUnavailable that names
// the address and the last failure. A framework service gives it
// --broker_connect_timeout (default 10s) and then fails to start, clearly:
// a service should not run deaf. Long-running programs that must work
// without their broker (the bot) connect with a context of their own.
//
// Broker restart: once connected, a broker reconnects by itself for ever
// (nats.go's and paho's own loops, with backoff up to 5s), and every
// subscription comes back with the connection, with no action from the
// program. While the connection is down, Publish fails at once with
// ErrUnavailable (nothing is buffered) and Subscribe records the
// subscription, which is made when the connection is back. The http
// broker has no server to lose: its subscribers are registered again every
// register interval, so a registry that lost them (a restarted Consul dev
// agent) has them back within that interval.
//
// Subscribing and unsubscribing at run time is cheap and leaves nothing
// behind: a subscription is one goroutine and its queue (nats: nats.go's),
// plus one registration (http) or one server-side subscription (nats,
// mqtt). After Unsubscribe returns, the handler is never called again.
package broker
