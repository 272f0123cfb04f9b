// Package nats is the broker over a NATS server (core NATS, through
// github.com/nats-io/nats.go). It is in the framework's broker table as
// "nats"; --broker_address lists the servers of a cluster (any one will
// do), as host:port or nats://[user:password@]host:port.
//
// On the wire, a topic is a NATS subject and a queue group a NATS queue
// group. A message is sent in one of two formats ([WithFormat]; the
// framework's --broker_format):
//
//	go-micro  (the default) go-micro v1's nats broker's: the payload is
//	          go-micro's broker message as its JSON codec writes it,
//	          {"Header":{...},"Body":"<base64>"}, without NATS headers.
//	          go-micro's subscribers (go-micro v1's broker/nats, and
//	          micro.RegisterSubscriber over it) read only this: they drop
//	          any other payload without a word, and go-micro v1.8.0's
//	          server crashes (a nil map) on one that is a JSON object
//	          without "Header", such as a JSON body sent raw.
//	nats      the headers are NATS headers (nats-server 2.2 and later) and
//	          the body the payload, as is: plain NATS clients read the
//	          body as it was published (`nats sub`), and the body is not
//	          base64-inflated. Only for topics no go-micro service
//	          subscribes to. Both formats go about as fast (see
//	          bench/README.md): go-micro's message is written and read by
//	          hand, not by encoding/json.
//
// The default is go-micro's format because the services this package
// meets on a NATS server are go-micro's, and for them any other format is
// lost (or fatal); microbot's own subscribers read both.
//
// Subscribers read both, whatever the format the broker publishes in: a
// message with NATS headers is taken as it is; one without, whose payload
// is exactly go-micro's JSON message (the keys Header and Body and nothing
// else, spelt so, Header an object of strings or null, Body base64 or null:
// see framework/broker/internal/envelope), is unwrapped, its Header becoming
// the event's headers and Body its body; any other payload is the body of
// an event without headers, whole (a malformed go-micro message too: it is
// delivered, never dropped). So go-micro's publishers reach this package's
// subscribers as its own do, and so does `nats pub alerts '{"name":"x"}'`.
// The test costs a look at the first bytes of a payload that is not such a
// message.
//
// Delivery is core NATS's: at most once. Publish hands the message to the
// connection, which writes it to the server in the background; when the
// connection is down (the server restarts) Publish fails at once with
// broker.ErrUnavailable instead of buffering; Flush (broker.Flusher) waits
// for the server to have what was published. nats.go reconnects by itself,
// forever, with exponential backoff (100 ms doubling to 5 s, jittered), and
// subscribes again; what was published meanwhile is lost to the
// subscribers. Each subscription's queue is nats.go's own pending queue,
// bounded by WithMaxPending and WithMaxPendingBytes; what overflows it is
// dropped by nats.go and counted (a "slow consumer").
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/internal/deliver"
	"github.com/microbot/microbot/framework/broker/internal/envelope"
	"github.com/microbot/microbot/framework/broker/internal/servers"
)

// Defaults of the options.
const (
	DefaultAddr        = "nats://127.0.0.1:4222"
	DefaultDialTimeout = 5 * time.Second
	// DefaultPingInterval and the two pings allowed to go unanswered bound
	// how long a server that vanished without closing the connection takes
	// to be noticed.
	DefaultPingInterval = 10 * time.Second
)

// Reconnection backoff: from reconnectMin, doubling, to reconnectMax.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// Broker is the NATS broker. The zero value is not usable; call New.
type Broker struct {
	opts options

	mu      sync.Mutex
	nc      *natsgo.Conn
	closed  bool                          // Disconnect was called
	subs    map[*natsgo.Subscription]*sub // live subscriptions
	lastErr error                         // of the last failed connection attempt
	up      chan struct{}                 // closed once connected (the first time)
	shut    chan struct{}                 // closed when the connection is closed for good

	// live is nc once Connect succeeded, nil before and after Disconnect:
	// what Publish and Subscribe use, without the lock.
	live atomic.Pointer[natsgo.Conn]
	// valid is the last topic Publish found valid: a publisher that
	// publishes to one topic again and again checks it once.
	valid atomic.Pointer[string]
	// payloads holds *[]byte buffers in which Publish writes go-micro's
	// message. nats.go copies a payload before Publish returns, so a
	// buffer serves the next publish: a message costs no allocation of
	// its own. Buffers over maxPooled are left to the collector.
	payloads sync.Pool
}

// maxPooled is the largest payload buffer Publish keeps for the next one.
const maxPooled = 64 << 10

// Format is how a message is put in a NATS message (see the package doc).
type Format string

// The formats of WithFormat.
const (
	// FormatGoMicro: go-micro's JSON message as the payload, as go-micro
	// v1's nats broker sends it (the default).
	FormatGoMicro Format = "go-micro"
	// FormatNATS: the headers as NATS headers, the body as the payload.
	FormatNATS Format = "nats"
)

// Formats lists the formats WithFormat takes, the default first.
func Formats() []Format { return []Format{FormatGoMicro, FormatNATS} }

type options struct {
	format      Format
	addrs       []string
	name        string
	log         *slog.Logger
	dialTimeout time.Duration
	ping        time.Duration
	extra       []natsgo.Option
}

// Option configures a Broker.
type Option func(*options)

// WithAddrs sets the servers (host:port or nats://host:port; default
// DefaultAddr).
func WithAddrs(addrs ...string) Option { return func(o *options) { o.addrs = addrs } }

// WithName sets the connection's name, shown by the server's monitoring.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithLogger sets where warnings go (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithDialTimeout bounds each attempt to connect to a server.
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithPingInterval sets how often the server is pinged; two unanswered
// pings close the connection and start a reconnection.
func WithPingInterval(d time.Duration) Option { return func(o *options) { o.ping = d } }

// WithFormat sets the format messages are published in: FormatGoMicro (the
// default), which go-micro's subscribers read, or FormatNATS, for topics
// only NATS clients and microbot read. Subscribers read both either way.
func WithFormat(f Format) Option { return func(o *options) { o.format = f } }

// WithNATSOptions adds nats.go options (TLS, credentials, ...) after the
// broker's own.
func WithNATSOptions(opts ...natsgo.Option) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker for the servers given with WithAddrs, not yet
// connected. It checks the addresses.
func New(opts ...Option) (*Broker, error) {
	o := options{name: "microbot", format: FormatGoMicro, dialTimeout: DefaultDialTimeout, ping: DefaultPingInterval}
	for _, f := range opts {
		f(&o)
	}
	if len(o.addrs) == 0 {
		o.addrs = []string{DefaultAddr}
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.format != FormatNATS && o.format != FormatGoMicro {
		return nil, fmt.Errorf("nats broker: %w: format %q: want %q or %q", broker.ErrInvalid, o.format, FormatGoMicro, FormatNATS)
	}
	addrs, err := servers.URLs("nats", o.addrs, "nats", "nats", "tls", "ws", "wss")
	if err != nil {
		return nil, err
	}
	o.addrs = addrs
	if o.dialTimeout <= 0 || o.ping <= 0 {
		return nil, fmt.Errorf("nats broker: %w: dial timeout and ping interval must be positive", broker.ErrInvalid)
	}
	return &Broker{opts: o, subs: map[*natsgo.Subscription]*sub{}}, nil
}

func (b *Broker) addrList() string { return servers.List(b.opts.addrs) }

// String returns "nats".
func (b *Broker) String() string { return "nats" }

// reconnectDelay is the wait before the n-th attempt (from 1) of a round
// of reconnection.
func reconnectDelay(n int) time.Duration {
	d := reconnectMax
	if n < 16 {
		d = min(reconnectMin<<max(n-1, 0), reconnectMax)
	}
	return d/2 + rand.N(d/2+1)
}

// Connect connects to one of the servers, trying again with backoff until
// ctx ends.
func (b *Broker) Connect(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return fmt.Errorf("nats broker: connect: %w (it was disconnected)", broker.ErrNotConnected)
	case b.nc != nil:
		up := b.up
		b.mu.Unlock()
		return b.waitUp(ctx, up)
	}
	up, shut := make(chan struct{}), make(chan struct{})
	var upOnce, shutOnce sync.Once
	log := b.opts.log
	opts := []natsgo.Option{
		natsgo.Name(b.opts.name),
		natsgo.Timeout(b.opts.dialTimeout),
		natsgo.PingInterval(b.opts.ping),
		natsgo.MaxPingsOutstanding(2),
		natsgo.RetryOnFailedConnect(true),
		natsgo.MaxReconnects(-1),
		natsgo.CustomReconnectDelay(reconnectDelay),
		natsgo.ReconnectBufSize(-1), // fail publishes while reconnecting, keep nothing
		natsgo.ConnectHandler(func(*natsgo.Conn) { upOnce.Do(func() { close(up) }) }),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			upOnce.Do(func() { close(up) })
			log.Info("nats broker: reconnected; subscriptions restored", "server", servers.Redact(nc.ConnectedUrl()))
		}),
		natsgo.DisconnectErrHandler(func(nc *natsgo.Conn, err error) {
			if err != nil {
				log.Warn("nats broker: connection lost; reconnecting", "err", err)
			}
		}),
		natsgo.ReconnectErrHandler(func(_ *natsgo.Conn, err error) {
			b.mu.Lock()
			b.lastErr = err
			b.mu.Unlock()
		}),
		natsgo.ClosedHandler(func(*natsgo.Conn) { shutOnce.Do(func() { close(shut) }) }),
		natsgo.ErrorHandler(b.asyncError),
	}
	nc, err := natsgo.Connect(strings.Join(b.opts.addrs, ","), append(opts, b.opts.extra...)...)
	if err != nil {
		b.mu.Unlock()
		return fmt.Errorf("nats broker: connect to %s: %w: %w", b.addrList(), broker.ErrUnavailable, err)
	}
	b.nc, b.up, b.shut = nc, up, shut
	b.mu.Unlock()
	if err := b.waitUp(ctx, up); err != nil {
		// Give up: the broker stays unconnected, and may be connected again.
		b.mu.Lock()
		if b.nc == nc {
			b.nc = nil
		}
		b.mu.Unlock()
		nc.Close()
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nc == nc && !b.closed {
		b.live.Store(nc)
	}
	return nil
}

// waitUp waits until the connection is up or ctx ends.
func (b *Broker) waitUp(ctx context.Context, up <-chan struct{}) error {
	select {
	case <-up:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	last := b.lastErr
	b.mu.Unlock()
	if last == nil {
		last = ctx.Err()
	}
	return fmt.Errorf("nats broker: cannot connect to %s: %w: %w", b.addrList(), broker.ErrUnavailable, last)
}

// asyncError reports what nats.go finds in the background: mostly slow
// consumers (a subscription's pending queue overflowed).
func (b *Broker) asyncError(_ *natsgo.Conn, ns *natsgo.Subscription, err error) {
	b.mu.Lock()
	s := b.subs[ns]
	b.mu.Unlock()
	if s != nil && errors.Is(err, natsgo.ErrSlowConsumer) {
		s.logSlow()
		return
	}
	b.opts.log.Warn("nats broker: asynchronous error", "err", err)
}

// conn returns the connection, or an error if the broker is not connected.
func (b *Broker) conn() (*natsgo.Conn, error) {
	if nc := b.live.Load(); nc != nil {
		return nc, nil
	}
	return nil, fmt.Errorf("nats broker: %w", broker.ErrNotConnected)
}

// Disconnect drains the subscriptions (nats.go's drain: unsubscribe, then
// handle what is pending) until ctx ends, and closes the connection.
func (b *Broker) Disconnect(ctx context.Context) error {
	b.mu.Lock()
	nc, shut, subs := b.nc, b.shut, b.subs
	b.closed, b.subs = true, map[*natsgo.Subscription]*sub{}
	b.live.Store(nil)
	b.mu.Unlock()
	if nc == nil {
		return nil
	}
	for _, s := range subs {
		s.snapshot() // draining ends the subscriptions and their counters
	}
	var errs []error
	if nc.IsConnected() {
		if err := nc.Drain(); err == nil {
			select {
			case <-shut:
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("nats broker: disconnect: draining cut short: %w", ctx.Err()))
			}
		}
	}
	for _, s := range subs {
		s.final() // what draining left pending is dropped by Close
	}
	nc.Close()
	for _, s := range subs {
		if err := s.r.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Publish hands m to the connection. It fails with broker.ErrUnavailable
// while the connection is down.
func (b *Broker) Publish(_ context.Context, topic string, m *broker.Message) error {
	if v := b.valid.Load(); v == nil || *v != topic {
		if err := broker.ValidateTopic(topic); err != nil {
			return fmt.Errorf("nats broker: publish: %w", err)
		}
		t := topic // a copy, so that only this branch allocates
		b.valid.Store(&t)
	}
	var body []byte
	var hdr natsgo.Header
	var buf *[]byte // body's, from b.payloads
	if b.opts.format == FormatGoMicro {
		if buf, _ = b.payloads.Get().(*[]byte); buf == nil {
			buf = new([]byte)
		}
		var err error
		if body, err = b.envelope((*buf)[:0], topic, m); err != nil {
			b.payloads.Put(buf)
			return err
		}
		*buf = body
	} else if m != nil {
		body = m.Body
		if len(m.Header) > 0 {
			hdr = make(natsgo.Header, len(m.Header))
			vals := make([]string, 0, len(m.Header)) // one array for every value
			total := 0
			for k, v := range m.Header {
				if err := broker.ValidateHeaderField(k, v, &total); err != nil {
					return fmt.Errorf("nats broker: publish to %s: %w", topic, err)
				}
				vals = append(vals, v)
				hdr[k] = vals[len(vals)-1 : len(vals) : len(vals)]
			}
		}
	}
	nc, err := b.conn()
	if err != nil {
		return err
	}
	if hdr == nil {
		err = nc.Publish(topic, body)
	} else {
		err = nc.PublishMsg(&natsgo.Msg{Subject: topic, Header: hdr, Data: body})
	}
	if buf != nil && cap(*buf) <= maxPooled {
		b.payloads.Put(buf) // nats.go has copied body
	}
	// While reconnecting, nats.go refuses publishes (ReconnectBufSize -1).
	switch {
	case err == nil:
		return nil
	case errors.Is(err, natsgo.ErrMaxPayload):
		return fmt.Errorf("nats broker: publish to %s: %w: a payload of %d bytes, over the server's max_payload of %d", topic, broker.ErrTooLarge, len(body), nc.MaxPayload())
	case errors.Is(err, natsgo.ErrConnectionClosed):
		return fmt.Errorf("nats broker: publish to %s: %w", topic, broker.ErrNotConnected)
	case errors.Is(err, natsgo.ErrReconnectBufExceeded):
		return fmt.Errorf("nats broker: publish to %s: %w: the connection to %s is down", topic, broker.ErrUnavailable, b.addrList())
	default:
		return fmt.Errorf("nats broker: publish to %s: %w: %w", topic, broker.ErrUnavailable, err)
	}
}

// envelope appends m as go-micro's JSON message to dst, its headers
// checked.
func (b *Broker) envelope(dst []byte, topic string, m *broker.Message) ([]byte, error) {
	var hdr map[string]string
	var body []byte
	if m != nil {
		if err := broker.ValidateHeader(m.Header); err != nil {
			return nil, fmt.Errorf("nats broker: publish to %s: %w", topic, err)
		}
		hdr, body = m.Header, m.Body
	}
	return envelope.AppendEncode(dst, hdr, body), nil
}

// Subscribe subscribes to topic (in a NATS queue group with WithQueue).
// While the connection is up, it returns once the server has the
// subscription; while it is down, the subscription is made when it is back.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("nats broker: subscribe: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("nats broker: subscribe to %s: %w: nil handler", topic, broker.ErrInvalid)
	}
	o, err := broker.NewSubscribeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("nats broker: subscribe to %s: %w", topic, err)
	}
	nc, err := b.conn()
	if err != nil {
		return nil, err
	}
	s := &sub{b: b, r: deliver.NewRunner(topic, o.Queue, h, b.opts.log), maxPending: o.MaxPending}
	cb := s.deliver
	// The subscription is published in b.subs before nats.go can call back
	// with an error about it.
	b.mu.Lock()
	if o.Queue == "" {
		s.ns, err = nc.Subscribe(topic, cb)
	} else {
		s.ns, err = nc.QueueSubscribe(topic, o.Queue, cb)
	}
	if err == nil {
		// nats.go counts the message being handled as pending too.
		err = s.ns.SetPendingLimits(o.MaxPending+1, o.MaxPendingBytes)
		b.subs[s.ns] = s
	}
	b.mu.Unlock()
	if err != nil {
		if s.ns != nil {
			_ = s.Unsubscribe(ctx)
		}
		return nil, fmt.Errorf("nats broker: subscribe to %s: %w: %w", topic, broker.ErrUnavailable, err)
	}
	if nc.IsConnected() {
		fctx := ctx
		if _, ok := ctx.Deadline(); !ok { // nats.go wants one
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(ctx, b.opts.dialTimeout)
			defer cancel()
		}
		if err := nc.FlushWithContext(fctx); err != nil && nc.IsConnected() {
			_ = s.Unsubscribe(context.Background())
			return nil, fmt.Errorf("nats broker: subscribe to %s: the server did not confirm: %w: %w", topic, broker.ErrUnavailable, err)
		}
	}
	return s, nil
}

// sub is a subscription of the NATS broker.
type sub struct {
	b          *Broker
	r          *deliver.Runner
	ns         *natsgo.Subscription
	maxPending int

	mu      sync.Mutex
	done    bool
	dropped uint64 // nats.go's count, kept when the subscription ends
	lastLog time.Time
}

// deliver is the subscription's nats.go callback: the message becomes an
// Event of its own (headers: the first value of each NATS header; without
// NATS headers, go-micro's JSON message is unwrapped) for the runner.
func (s *sub) deliver(m *natsgo.Msg) {
	s.r.Received()
	e := &broker.Event{Topic: m.Subject}
	e.Body = m.Data
	if len(m.Header) > 0 {
		e.Header = make(map[string]string, len(m.Header))
		for k, v := range m.Header {
			if len(v) > 0 {
				e.Header[k] = v[0]
			}
		}
	} else if hdr, body, ok := envelope.Decode(m.Data); ok {
		e.Header, e.Body = hdr, body
	}
	s.r.Run(e)
}

func (s *sub) Topic() string { return s.r.Topic() }
func (s *sub) Queue() string { return s.r.Queue() }

// Stats adds nats.go's pending and dropped messages to the runner's
// counters. The two are read apart: when the runner's counters moved
// meanwhile (a message went through the callback whole, counted by neither
// read), it reads again, so a message is never left out; one whose
// callback has just returned may still count as pending a moment longer
// (nats.go takes it off when it takes the next).
func (s *sub) Stats() broker.Stats {
	var st broker.Stats
	for range 100 {
		before := s.r.Stats()
		st = s.stats(before)
		if s.r.Stats() == before {
			break
		}
	}
	return st
}

// stats is Stats from the runner's counters st.
func (s *sub) stats(st broker.Stats) broker.Stats {
	// nats.go counts the message in the callback as pending too.
	running := int64(st.Received - st.Handled - st.Failed - st.Panicked - st.Undecodable - st.Dropped)
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped, pending := s.dropped, uint64(0)
	if !s.done {
		if n, err := s.ns.Dropped(); err == nil {
			dropped = uint64(n)
		}
		if n, _, err := s.ns.Pending(); err == nil {
			// The message nats.go is handing to the callback, not yet
			// counted as received, is not queued either.
			pending = uint64(min(max(int64(n)-running, 0), int64(s.maxPending)))
		}
	}
	st.Dropped += dropped
	st.Pending = pending
	st.Received += dropped + pending
	return st
}

// snapshot records nats.go's count of dropped messages, while the
// subscription is valid.
func (s *sub) snapshot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, err := s.ns.Dropped(); err == nil && !s.done {
		s.dropped = uint64(n)
	}
}

// final records nats.go's counters before the subscription goes (those of
// the last snapshot if it is gone already); the messages still pending are
// counted as dropped.
func (s *sub) final() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if n, err := s.ns.Dropped(); err == nil {
		s.dropped = uint64(n)
	}
	if n, _, err := s.ns.Pending(); err == nil {
		st := s.r.Stats()
		running := int64(st.Received - st.Handled - st.Failed - st.Panicked - st.Undecodable - st.Dropped)
		s.dropped += uint64(max(int64(n)-running, 0))
	}
	s.done = true
}

// logSlow logs that the subscription dropped messages, at most once a
// second.
func (s *sub) logSlow() {
	s.mu.Lock()
	if time.Since(s.lastLog) < time.Second || s.done {
		s.mu.Unlock()
		return
	}
	s.lastLog = time.Now()
	n, _ := s.ns.Dropped()
	s.mu.Unlock()
	args := []any{"topic", s.Topic(), "dropped_total", n}
	if q := s.Queue(); q != "" {
		args = append(args, "queue", q)
	}
	s.b.opts.log.Warn("broker: subscriber too slow, message dropped (its queue is full)", args...)
}

// Unsubscribe ends the subscription at the server and stops deliveries.
func (s *sub) Unsubscribe(ctx context.Context) error {
	s.b.mu.Lock()
	delete(s.b.subs, s.ns)
	s.b.mu.Unlock()
	s.final()
	err := s.ns.Unsubscribe()
	if errors.Is(err, natsgo.ErrBadSubscription) || errors.Is(err, natsgo.ErrConnectionClosed) {
		err = nil // already gone
	}
	if serr := s.r.Stop(ctx); serr != nil {
		return serr
	}
	if err != nil {
		return fmt.Errorf("nats broker: unsubscribe from %s: %w", s.Topic(), err)
	}
	return nil
}
