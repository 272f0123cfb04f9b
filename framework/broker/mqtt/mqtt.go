// Package mqtt is the broker over an MQTT 3.1.1 server such as mosquitto
// (through github.com/eclipse/paho.mqtt.golang). It is in the framework's
// broker table as "mqtt"; --broker_address lists the servers (host:port,
// tcp://host:port, ssl://host:port; user and password may be given as
// tcp://user:password@host:port).
//
// On the wire, a topic is an MQTT topic of the same name (one level: the
// framework's topics hold no '/'), and a message is go-micro's broker
// message in JSON, {"Header":{...},"Body":"<base64>"}, as go-micro's mqtt
// plugin (go-plugins v1.5.1) publishes it, so services built with it and
// this broker reach each other. A payload that is not exactly such an
// object (the keys Header and Body, spelt so, and nothing else: see
// framework/broker/internal/envelope) is delivered as it is, as the body of
// a message without headers: what `mosquitto_pub -m '{"a":1}'` sends
// arrives whole.
//
// A queue group is an MQTT shared subscription, $share/<group>/<topic>
// (mosquitto 1.6 and later, and most MQTT 5 servers): the server hands each
// message to one of the group's subscriptions. MQTT 3.1.1 does not say
// which of a client's subscriptions a message matched, so the broker keeps
// one connection for publishing and plain subscriptions and one more per
// queue group it subscribes in (closed when the group's last subscription
// ends); within a process, plain subscribers of a topic share one MQTT
// subscription, and members of one group another, and messages are handed
// out locally. go-plugins' mqtt broker (v1.5.1) has no queue groups: each of
// its subscribers gets every message, whatever group it asks for (tested in
// goplugins_test.go and framework/events_gomicro_test.go).
//
// Quality of service is 1 by default (WithQoS): Publish returns once the
// server has acknowledged the message; the server delivers it to each
// subscription at least once while both connections hold. Sessions are
// clean: a subscriber that is away misses what is published meanwhile, and
// a message can arrive twice if a connection breaks between delivery and
// acknowledgement. Publish fails at once with broker.ErrUnavailable while
// the connection is down. paho reconnects by itself (backoff doubling to 5
// s), and the broker subscribes again on every connection.
package mqtt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/internal/deliver"
	"github.com/microbot/microbot/framework/broker/internal/envelope"
	"github.com/microbot/microbot/framework/broker/internal/servers"
)

// Defaults of the options.
const (
	DefaultAddr           = "tcp://127.0.0.1:1883"
	DefaultQoS            = 1
	DefaultConnectTimeout = 5 * time.Second
	DefaultKeepAlive      = 10 * time.Second
	// DefaultPublishTimeout bounds the wait for the server's acknowledgement
	// when Publish's context has no deadline.
	DefaultPublishTimeout = 10 * time.Second
)

// Reconnection: paho doubles its wait up to maxReconnectWait; connections of
// queue groups made while the server is away try every connectRetryWait.
const (
	maxReconnectWait = 5 * time.Second
	connectRetryWait = time.Second
)

// Broker is the MQTT broker. The zero value is not usable; call New.
type Broker struct {
	opts options

	mu        sync.Mutex
	connected bool
	closed    bool
	main      *conn            // publishing and plain subscriptions
	groups    map[string]*conn // one connection per queue group
}

type options struct {
	addrs          []string
	qos            byte
	log            *slog.Logger
	connectTimeout time.Duration
	keepAlive      time.Duration
	publishTimeout time.Duration
	clientID       string
	tune           []func(*paho.ClientOptions)
}

// Option configures a Broker.
type Option func(*options)

// WithAddrs sets the servers (default DefaultAddr).
func WithAddrs(addrs ...string) Option { return func(o *options) { o.addrs = addrs } }

// WithQoS sets the MQTT quality of service of publishing and subscribing:
// 0 (at most once, no acknowledgement), 1 (the default) or 2.
func WithQoS(qos byte) Option { return func(o *options) { o.qos = qos } }

// WithLogger sets where warnings go (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithConnectTimeout bounds each attempt to connect to a server.
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connectTimeout = d } }

// WithKeepAlive sets the MQTT keep-alive: a server that answers no ping
// within it is left and reconnected to.
func WithKeepAlive(d time.Duration) Option { return func(o *options) { o.keepAlive = d } }

// WithPublishTimeout bounds a Publish whose context has no deadline.
func WithPublishTimeout(d time.Duration) Option { return func(o *options) { o.publishTimeout = d } }

// WithClientID sets the prefix of the client ids (default "microbot-" and
// random hex); the connections of queue groups add "-" and the group.
func WithClientID(id string) Option { return func(o *options) { o.clientID = id } }

// WithPahoOptions adjusts the paho client options (TLS, credentials, ...)
// after the broker has set its own, for every connection.
func WithPahoOptions(f func(*paho.ClientOptions)) Option {
	return func(o *options) { o.tune = append(o.tune, f) }
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker for the servers given with WithAddrs, not yet
// connected. It checks the options.
func New(opts ...Option) (*Broker, error) {
	o := options{qos: DefaultQoS, connectTimeout: DefaultConnectTimeout, keepAlive: DefaultKeepAlive, publishTimeout: DefaultPublishTimeout}
	for _, f := range opts {
		f(&o)
	}
	if len(o.addrs) == 0 {
		o.addrs = []string{DefaultAddr}
	}
	addrs, err := servers.URLs("mqtt", o.addrs, "tcp", "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss")
	if err != nil {
		return nil, err
	}
	o.addrs = addrs
	switch {
	case o.qos > 2:
		return nil, fmt.Errorf("mqtt broker: %w QoS %d: want 0, 1 or 2", broker.ErrInvalid, o.qos)
	case o.connectTimeout <= 0 || o.keepAlive < time.Second || o.publishTimeout <= 0:
		return nil, fmt.Errorf("mqtt broker: %w: timeouts must be positive and the keep-alive at least 1s", broker.ErrInvalid)
	}
	if o.clientID == "" {
		var b [8]byte
		rand.Read(b[:]) //nolint:errcheck // never fails
		o.clientID = "microbot-" + hex.EncodeToString(b[:])
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	return &Broker{opts: o, groups: map[string]*conn{}}, nil
}

func (b *Broker) addrList() string { return servers.List(b.opts.addrs) }

// String returns "mqtt".
func (b *Broker) String() string { return "mqtt" }

// Connect connects the publishing connection, trying again until ctx ends.
func (b *Broker) Connect(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return fmt.Errorf("mqtt broker: connect: %w (it was disconnected)", broker.ErrNotConnected)
	case b.connected:
		b.mu.Unlock()
		return nil
	}
	c := b.main
	if c == nil {
		c = b.newConn("", b.opts.clientID)
		b.main = c
	}
	b.mu.Unlock()
	if err := c.waitUp(ctx); err != nil {
		b.mu.Lock()
		if b.main == c {
			b.main = nil
		}
		b.mu.Unlock()
		c.close()
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.close()
		return fmt.Errorf("mqtt broker: connect: %w (disconnected meanwhile)", broker.ErrNotConnected)
	}
	b.connected = true
	return nil
}

// Disconnect closes the connections and drains the subscriptions' queues
// until ctx ends.
func (b *Broker) Disconnect(ctx context.Context) error {
	b.mu.Lock()
	conns := []*conn{}
	if b.main != nil {
		conns = append(conns, b.main)
	}
	for _, c := range b.groups {
		conns = append(conns, c)
	}
	b.closed, b.main, b.groups = true, nil, map[string]*conn{}
	b.mu.Unlock()

	var subs []*sub
	for _, c := range conns {
		subs = append(subs, c.close()...)
	}
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { errs[i] = s.Drain(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Publish sends m to topic and, with QoS 1 or 2, waits for the server's
// acknowledgement.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return fmt.Errorf("mqtt broker: publish: %w", err)
	}
	var hdr map[string]string
	var body []byte
	if m != nil {
		if err := broker.ValidateHeader(m.Header); err != nil {
			return fmt.Errorf("mqtt broker: publish to %s: %w", topic, err)
		}
		hdr, body = m.Header, m.Body
	}
	payload := envelope.Encode(hdr, body) // paho keeps it until it is sent
	b.mu.Lock()
	c, usable := b.main, b.connected && !b.closed
	b.mu.Unlock()
	if !usable {
		return fmt.Errorf("mqtt broker: %w", broker.ErrNotConnected)
	}
	if !c.client.IsConnectionOpen() {
		return fmt.Errorf("mqtt broker: publish to %s: %w: the connection to %s is down", topic, broker.ErrUnavailable, b.addrList())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.publishTimeout)
		defer cancel()
	}
	tok := c.client.Publish(topic, b.opts.qos, false, payload)
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("mqtt broker: publish to %s: %w: %w", topic, broker.ErrUnavailable, err)
	}
	return nil
}

// wait waits for a paho token until ctx ends.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return fmt.Errorf("no answer from the server: %w", ctx.Err())
	}
}

// Subscribe subscribes to topic: on the publishing connection, or on the
// queue group's own with WithQueue. While the connection is up it returns
// once the server has confirmed the subscription; while it is down the
// subscription is made when it is back.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("mqtt broker: subscribe: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("mqtt broker: subscribe to %s: %w: nil handler", topic, broker.ErrInvalid)
	}
	o, err := broker.NewSubscribeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("mqtt broker: subscribe to %s: %w", topic, err)
	}
	b.mu.Lock()
	if !b.connected || b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("mqtt broker: %w", broker.ErrNotConnected)
	}
	c := b.main
	if o.Queue != "" {
		c = b.groups[o.Queue]
		if c == nil {
			c = b.newConn(o.Queue, b.opts.clientID+"-"+o.Queue)
			b.groups[o.Queue] = c
		}
	}
	s := &sub{b: b, c: c, Inbox: deliver.NewInbox(deliver.NewRunner(topic, o.Queue, h, b.opts.log), o)}
	first, connected := c.add(s)
	b.mu.Unlock()
	if first && !connected {
		// A queue group's new connection: wait for it, to return with the
		// subscription made. Should the server be away, onConnect makes it
		// once it is back.
		select {
		case <-c.up:
		case <-ctx.Done():
			return s, nil
		}
	}
	if first && c.client.IsConnectionOpen() {
		if err := c.subscribe(ctx, topic); err != nil {
			_ = s.Unsubscribe(context.Background())
			return nil, fmt.Errorf("mqtt broker: subscribe to %s: %w", topic, err)
		}
	}
	return s, nil
}

// conn is one MQTT connection and the subscriptions made on it.
type conn struct {
	b      *Broker
	queue  string // "" for the publishing connection
	client paho.Client
	up     chan struct{} // closed on the first connection
	upOnce sync.Once

	mu      sync.Mutex
	topics  map[string]*local // subscribed topic -> local subscribers
	lastErr error             // of the last failed connection attempt
	closed  bool
}

// local is the subscribers of one topic on one connection.
type local struct {
	subs []*sub
	next atomic.Uint64 // round robin among the members of a queue group
}

// newConn makes the connection of queue group queue ("" for the publishing
// one) and starts connecting it in the background.
func (b *Broker) newConn(queue, clientID string) *conn {
	c := &conn{b: b, queue: queue, up: make(chan struct{}), topics: map[string]*local{}}
	po := paho.NewClientOptions()
	for _, a := range b.opts.addrs {
		po.AddBroker(a)
	}
	po.SetClientID(clientID)
	po.SetCleanSession(true)
	po.SetOrderMatters(true) // the handler only queues: it never blocks paho
	po.SetAutoReconnect(true)
	po.SetMaxReconnectInterval(maxReconnectWait)
	po.SetConnectRetry(true)
	po.SetConnectRetryInterval(connectRetryWait)
	po.SetConnectTimeout(b.opts.connectTimeout)
	po.SetKeepAlive(b.opts.keepAlive)
	po.SetPingTimeout(b.opts.keepAlive / 2)
	po.SetWriteTimeout(b.opts.publishTimeout)
	po.SetDefaultPublishHandler(c.receive)
	po.SetOnConnectHandler(c.onConnect)
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		b.opts.log.Warn("mqtt broker: connection lost; reconnecting", "queue", queue, "err", err)
	})
	po.SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
		var err error
		switch n := n.(type) {
		case paho.ConnectionNotificationBrokerFailed:
			err = n.Reason
		case paho.ConnectionNotificationFailed:
			err = n.Reason
		default:
			return
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
	})
	for _, f := range b.opts.tune {
		f(po)
	}
	c.client = paho.NewClient(po)
	c.client.Connect() // with ConnectRetry, it keeps trying in the background
	return c
}

// waitUp waits until the connection is up or ctx ends.
func (c *conn) waitUp(ctx context.Context) error {
	select {
	case <-c.up:
		return nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	last := c.lastErr
	c.mu.Unlock()
	if last == nil {
		last = ctx.Err()
	}
	return fmt.Errorf("mqtt broker: cannot connect to %s: %w: %w", c.b.addrList(), broker.ErrUnavailable, last)
}

// onConnect subscribes again to every topic of the connection (the session
// is clean: the server forgot them).
func (c *conn) onConnect(paho.Client) {
	c.mu.Lock()
	topics := make([]string, 0, len(c.topics))
	for t := range c.topics {
		topics = append(topics, t)
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	first := false
	c.upOnce.Do(func() { first = true; close(c.up) })
	if !first {
		c.b.opts.log.Info("mqtt broker: reconnected; subscribing again", "queue", c.queue, "topics", len(topics))
	}
	for _, t := range topics {
		ctx, cancel := context.WithTimeout(context.Background(), c.b.opts.publishTimeout)
		if err := c.subscribe(ctx, t); err != nil {
			c.b.opts.log.Error("mqtt broker: subscribing again failed", "topic", t, "queue", c.queue, "err", err)
		}
		cancel()
	}
}

// filter is the MQTT topic filter of topic on this connection.
func (c *conn) filter(topic string) string {
	if c.queue == "" {
		return topic
	}
	return "$share/" + c.queue + "/" + topic
}

// subscribe makes the MQTT subscription of topic and waits for the server
// to grant it.
func (c *conn) subscribe(ctx context.Context, topic string) error {
	f := c.filter(topic)
	tok := c.client.Subscribe(f, c.b.opts.qos, nil)
	if err := wait(ctx, tok); err != nil {
		if !c.client.IsConnectionOpen() {
			return nil // made on the next connection
		}
		return fmt.Errorf("%w: subscribing to %s: %w", broker.ErrUnavailable, f, err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		if code, ok := st.Result()[f]; ok && code == 0x80 {
			return fmt.Errorf("%w: the server refused the subscription to %s", broker.ErrUnavailable, f)
		}
	}
	return nil
}

// add records s; first says it is the first subscriber of its topic here,
// connected whether the connection is up (so the caller subscribes at the
// server). Both under c.mu, so that onConnect sees s or the caller
// subscribes.
func (c *conn) add(s *sub) (first, connected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topics[s.Topic()]
	if l == nil {
		l = &local{}
		c.topics[s.Topic()] = l
		first = true
	}
	l.subs = append(l.subs, s)
	return first, c.client.IsConnectionOpen()
}

// remove takes s out; last says no subscriber of its topic is left, empty
// that the connection has no subscriber at all.
func (c *conn) remove(s *sub) (last, empty bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.topics[s.Topic()]
	if l == nil {
		return false, len(c.topics) == 0
	}
	subs := make([]*sub, 0, len(l.subs))
	for _, x := range l.subs {
		if x != s {
			subs = append(subs, x)
		}
	}
	if len(subs) == len(l.subs) {
		return false, len(c.topics) == 0
	}
	if len(subs) == 0 {
		delete(c.topics, s.Topic())
		return true, len(c.topics) == 0
	}
	l.subs = subs
	return false, false
}

// receive hands a message to the local subscribers of its topic: each one,
// or one member of the connection's queue group.
func (c *conn) receive(_ paho.Client, m paho.Message) {
	topic := m.Topic()
	c.mu.Lock()
	l := c.topics[topic]
	var targets []*sub
	if l != nil && len(l.subs) > 0 {
		if c.queue == "" {
			targets = l.subs
		} else {
			targets = []*sub{l.subs[(l.next.Add(1)-1)%uint64(len(l.subs))]}
		}
	}
	c.mu.Unlock()
	if len(targets) == 0 {
		return // unsubscribed meanwhile
	}
	hdr, body := decode(m.Payload())
	events := make([]*broker.Event, len(targets))
	for i := range targets {
		e := &broker.Event{Topic: topic}
		e.Header, e.Body = hdr, body
		if i > 0 { // each subscriber its own copy, made before any handler runs
			e.Header, e.Body = cloneHeader(hdr), bytes.Clone(body)
		}
		events[i] = e
	}
	for i, s := range targets {
		s.Offer(events[i])
	}
}

func cloneHeader(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	c := make(map[string]string, len(h))
	for k, v := range h {
		c[k] = v
	}
	return c
}

// decode returns the header and body of a payload: those of go-micro's
// JSON message if it is one (package envelope says how strictly), else no
// header and the payload itself.
func decode(payload []byte) (map[string]string, []byte) {
	if hdr, body, ok := envelope.Decode(payload); ok {
		return hdr, body
	}
	return nil, payload
}

// close disconnects and returns the subscriptions that were on the
// connection.
func (c *conn) close() []*sub {
	c.mu.Lock()
	c.closed = true
	var subs []*sub
	for _, l := range c.topics {
		subs = append(subs, l.subs...)
	}
	c.topics = map[string]*local{}
	c.mu.Unlock()
	c.client.Disconnect(100)
	return subs
}

// sub is a subscription of the MQTT broker.
type sub struct {
	b              *Broker
	c              *conn
	*deliver.Inbox // Topic, Queue, Stats, and the queue
}

// Unsubscribe stops the subscription; the last local subscriber of a topic
// unsubscribes at the server, the last of a queue group closes its
// connection.
func (s *sub) Unsubscribe(ctx context.Context) error {
	b, c := s.b, s.c
	b.mu.Lock()
	last, empty := c.remove(s)
	closeConn := empty && c.queue != "" && b.groups[c.queue] == c
	if closeConn {
		delete(b.groups, c.queue)
	}
	b.mu.Unlock()
	var err error
	switch {
	case closeConn:
		c.close()
	case last && c.client.IsConnectionOpen():
		if werr := wait(ctx, c.client.Unsubscribe(c.filter(s.Topic()))); werr != nil && c.client.IsConnectionOpen() {
			err = fmt.Errorf("mqtt broker: unsubscribe from %s at the server: %w", s.Topic(), werr)
		}
	}
	if serr := s.Stop(ctx); serr != nil {
		return serr
	}
	return err
}
