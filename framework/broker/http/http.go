// Package http is the broker without a broker server, wire-compatible with
// go-micro v1's http broker (the framework's default, "http" in its table
// of brokers): each process that subscribes serves an inbox over HTTP, and
// publishers find the inboxes through the service registry and POST each
// message straight to them.
//
// The wire, as go-micro v1.8.0 has it:
//
//   - A subscription is registered as the service "topic:" + topic, under
//     the version of its queue group, or broker.BroadcastVersion
//     ("ff.http.broadcast") for a plain subscription, with one node: id
//     "broker-<uuid>.<uuid>", the inbox's host:port, metadata secure=false.
//     It is registered again every RegisterInterval with a TTL, and
//     deregistered by Unsubscribe.
//   - A message is POSTed to http://<node address>/_sub?id=<node id> with
//     Content-Type application/json and the body
//     {"Header":{...,":topic":"<topic>"},"Body":"<base64>"}.
//   - Each plain subscriber gets the message; of each queue group, one
//     member, picked at random (a member that cannot be reached, or says
//     it has no such subscriber, is skipped for the next one: the message
//     did not reach it, so it cannot arrive twice).
//
// Publish returns once every subscriber it found has answered: for ours,
// once the message is in the subscriber's queue (the answer is 202); a
// go-micro subscriber answers after its handler ran. Delivery is at most
// once: a subscriber that cannot be reached misses the message (go-micro
// v1 keeps a small backlog per topic and sends it with the next publish;
// this broker does not). Publish returns an error wrapping
// broker.ErrUnavailable that names the subscribers missed, if any. A
// message to a topic nobody subscribes to goes nowhere, without error.
//
// Publishers learn of subscribers through the registry, cached and
// invalidated by a registry watch (package selector): a new subscription
// is reached as soon as the publisher's watch has seen it, a few
// milliseconds with the local and Consul registries.
//
// Subscribers that are not ours are served as go-micro serves them; the
// inbox answers POSTs only: 202 when queued (or dropped, counted, when the
// subscription's queue is full), 404 for an id it does not serve, 400 for a
// body that is not such a message (counted as undecodable), 413 over the
// size limit.
package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/internal/deliver"
	"github.com/microbot/microbot/framework/internal/node"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/selector"
)

// Wire constants of go-micro v1's http broker.
const (
	// SubPath is the inbox's path.
	SubPath = "/_sub"
	// TopicHeader carries the topic inside the JSON message.
	TopicHeader = ":topic"
	// ServicePrefix prefixes the topic in the registry's service name.
	ServicePrefix = broker.TopicServicePrefix
)

// Defaults of the options.
const (
	DefaultAddress          = "127.0.0.1:0"
	DefaultRegisterTTL      = time.Minute // go-micro's
	DefaultRegisterInterval = 30 * time.Second
	DefaultMaxMessageSize   = 4 << 20
	DefaultPublishTimeout   = 10 * time.Second
)

// Broker is the http broker. The zero value is not usable; call New.
type Broker struct {
	opts   options
	id     string // "broker-<uuid>"
	client *nethttp.Client

	mu        sync.Mutex
	connected bool
	closed    bool
	ln        net.Listener
	srv       *nethttp.Server
	served    chan struct{}
	advertise string // the inbox's published host:port
	sel       selector.VersionSelector
	subs      map[string]*sub // by node id
	stop      context.CancelFunc
	looped    chan struct{}
}

type options struct {
	reg              registry.Registry
	address          string
	advertise        string
	log              *slog.Logger
	registerTTL      time.Duration
	registerInterval time.Duration
	maxMessageSize   int64
	publishTimeout   time.Duration
}

// Option configures a Broker.
type Option func(*options)

// WithRegistry sets the registry where subscribers are registered and
// found (required).
func WithRegistry(r registry.Registry) Option { return func(o *options) { o.reg = r } }

// WithAddress sets the inbox's listen address (default "127.0.0.1:0": a
// free port on loopback; "0.0.0.0:0" serves other hosts).
func WithAddress(addr string) Option { return func(o *options) { o.address = addr } }

// WithAdvertise sets the inbox address published in the registry, when
// publishers must use another one than the listener's.
func WithAdvertise(addr string) Option { return func(o *options) { o.advertise = addr } }

// WithLogger sets where warnings go (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterTTL sets how long a subscriber's registration lives without
// being renewed (default DefaultRegisterTTL).
func WithRegisterTTL(d time.Duration) Option { return func(o *options) { o.registerTTL = d } }

// WithRegisterInterval sets how often registrations are renewed (default
// DefaultRegisterInterval).
func WithRegisterInterval(d time.Duration) Option {
	return func(o *options) { o.registerInterval = d }
}

// WithMaxMessageSize bounds the body of a POST the inbox takes, and so the
// messages that can be published (default DefaultMaxMessageSize).
func WithMaxMessageSize(n int64) Option { return func(o *options) { o.maxMessageSize = n } }

// WithPublishTimeout bounds a Publish whose context has no deadline
// (default DefaultPublishTimeout).
func WithPublishTimeout(d time.Duration) Option { return func(o *options) { o.publishTimeout = d } }

var _ broker.Broker = (*Broker)(nil)

// New returns a broker, not yet connected (not yet listening).
func New(opts ...Option) (*Broker, error) {
	o := options{
		address:          DefaultAddress,
		registerTTL:      DefaultRegisterTTL,
		registerInterval: DefaultRegisterInterval,
		maxMessageSize:   DefaultMaxMessageSize,
		publishTimeout:   DefaultPublishTimeout,
	}
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.reg == nil:
		return nil, fmt.Errorf("http broker: %w: no registry (WithRegistry): subscribers are found through it", broker.ErrInvalid)
	case o.registerTTL < 0 || o.registerInterval < 0 || o.maxMessageSize <= 0 || o.publishTimeout <= 0:
		return nil, fmt.Errorf("http broker: %w: negative TTL or interval, or a size or timeout that is not positive", broker.ErrInvalid)
	}
	if _, _, err := net.SplitHostPort(o.address); err != nil {
		return nil, fmt.Errorf("http broker: %w listen address %q: want host:port", broker.ErrInvalid, o.address)
	}
	if o.advertise != "" {
		if _, _, err := net.SplitHostPort(o.advertise); err != nil {
			return nil, fmt.Errorf("http broker: %w advertised address %q: want host:port", broker.ErrInvalid, o.advertise)
		}
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	tr := &nethttp.Transport{
		Proxy:                 nil, // inboxes are reached directly
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Broker{
		opts:   o,
		id:     "broker-" + node.NewUUID(),
		client: &nethttp.Client{Transport: tr},
		subs:   map[string]*sub{},
	}, nil
}

// String returns "http".
func (b *Broker) String() string { return "http" }

// Address returns the inbox's listen address once connected, or "".
func (b *Broker) Address() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

// Connect starts the inbox and the renewal of registrations.
func (b *Broker) Connect(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("http broker: connect: %w (it was disconnected)", broker.ErrNotConnected)
	case b.connected:
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", b.opts.address)
	if err != nil {
		return fmt.Errorf("http broker: inbox: %w: %w", broker.ErrUnavailable, err)
	}
	mux := nethttp.NewServeMux()
	mux.HandleFunc(SubPath, b.serveInbox)
	b.srv = &nethttp.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(b.opts.log.Handler(), slog.LevelWarn),
	}
	b.ln, b.served = ln, make(chan struct{})
	b.advertise = node.Advertised(b.opts.advertise, ln.Addr())
	sel, ok := selector.New(b.opts.reg, selector.WithLogger(b.opts.log)).(selector.VersionSelector)
	if !ok {
		ln.Close()
		return errors.New("http broker: the selector cannot tell versions apart") // cannot happen
	}
	b.sel = sel
	loopCtx, stop := context.WithCancel(context.Background())
	b.stop, b.looped = stop, make(chan struct{})
	go func(srv *nethttp.Server, served chan struct{}) {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			b.opts.log.Error("http broker: inbox stopped serving", "err", err)
		}
	}(b.srv, b.served)
	go b.renew(loopCtx, b.looped)
	b.connected = true
	return nil
}

// Disconnect deregisters the subscriptions, stops the inbox (waiting for
// the POSTs it is answering), and drains the subscriptions' queues until
// ctx ends.
func (b *Broker) Disconnect(ctx context.Context) error {
	b.mu.Lock()
	if b.closed || !b.connected {
		b.closed = true
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = map[string]*sub{}
	srv, served, stop, looped, sel := b.srv, b.served, b.stop, b.looped, b.sel
	b.mu.Unlock()

	stop()
	<-looped
	list := make([]*sub, 0, len(subs))
	for _, s := range subs {
		list = append(list, s)
	}
	var wg sync.WaitGroup
	for _, s := range list {
		wg.Go(func() { b.deregister(ctx, s) })
	}
	wg.Wait()
	errs := make([]error, len(list)+1)
	if err := srv.Shutdown(ctx); err != nil {
		errs[0] = fmt.Errorf("http broker: inbox: POSTs cut off: %w", err)
		srv.Close()
	}
	<-served
	for i, s := range list {
		wg.Go(func() { errs[i+1] = s.Drain(ctx) })
	}
	wg.Wait()
	sel.Close()
	b.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// renew registers every subscription again each interval until ctx ends.
func (b *Broker) renew(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	node.Renew(ctx, b.opts.registerInterval, b.opts.log, func(ctx context.Context) error {
		b.mu.Lock()
		subs := make([]*sub, 0, len(b.subs))
		for _, s := range b.subs {
			subs = append(subs, s)
		}
		b.mu.Unlock()
		var errs []error
		for _, s := range subs {
			if err := b.register(ctx, s); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}, "broker", "http")
}

func (b *Broker) register(ctx context.Context, s *sub) error {
	var ro []registry.RegisterOption
	if b.opts.registerTTL > 0 {
		ro = append(ro, registry.WithTTL(b.opts.registerTTL))
	}
	if err := b.opts.reg.Register(ctx, s.svc, ro...); err != nil {
		return fmt.Errorf("register the subscriber of %s in the %s registry: %w", s.Topic(), b.opts.reg, err)
	}
	return nil
}

func (b *Broker) deregister(ctx context.Context, s *sub) {
	if err := b.opts.reg.Deregister(ctx, s.svc); err != nil {
		b.opts.log.Warn("http broker: deregistering a subscriber failed; it expires with its TTL",
			"topic", s.Topic(), "ttl", b.opts.registerTTL, "err", err)
	}
}

// Subscribe registers a subscriber of topic whose inbox is this broker's.
// If the registry cannot be reached, the subscription stands and its
// registration is tried again every register interval.
func (b *Broker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("http broker: subscribe: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("http broker: subscribe to %s: %w: nil handler", topic, broker.ErrInvalid)
	}
	o, err := broker.NewSubscribeOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("http broker: subscribe to %s: %w", topic, err)
	}
	b.mu.Lock()
	if !b.connected || b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("http broker: %w", broker.ErrNotConnected)
	}
	version := o.Queue
	if version == "" {
		version = broker.BroadcastVersion
	}
	id := b.id + "." + node.NewUUID()
	s := &sub{
		b:     b,
		Inbox: deliver.NewInbox(deliver.NewRunner(topic, o.Queue, h, b.opts.log), o),
		svc: &registry.Service{
			Name:    ServicePrefix + topic,
			Version: version,
			Nodes:   []*registry.Node{{ID: id, Address: b.advertise, Metadata: map[string]string{"secure": "false"}}},
		},
	}
	b.subs[id] = s
	b.mu.Unlock()
	if err := b.register(ctx, s); err != nil {
		if errors.Is(err, registry.ErrInvalid) {
			b.mu.Lock()
			delete(b.subs, id)
			b.mu.Unlock()
			_ = s.Stop(ctx)
			return nil, fmt.Errorf("http broker: subscribe: %w: %w", broker.ErrInvalid, err)
		}
		// The registry is this broker's server: while it is away the
		// subscription stands and is registered by the renewal loop.
		b.opts.log.Warn("http broker: registering a subscriber failed; will retry", "topic", topic, "in", b.opts.registerInterval, "err", err)
	}
	return s, nil
}

// sub is a subscription of the http broker: a registered node.
type sub struct {
	b              *Broker
	*deliver.Inbox // Topic, Queue, Stats, and the queue
	svc            *registry.Service
}

// Unsubscribe deregisters the subscriber and stops its deliveries. A POST
// for it that arrives afterwards is answered 404.
func (s *sub) Unsubscribe(ctx context.Context) error {
	b := s.b
	id := s.svc.Nodes[0].ID
	b.mu.Lock()
	_, live := b.subs[id]
	delete(b.subs, id)
	b.mu.Unlock()
	if live {
		b.deregister(ctx, s)
	}
	return s.Stop(ctx)
}

// envelope is go-micro's broker.Message, as JSON.
type envelope struct {
	Header map[string]string
	Body   []byte
}

// serveInbox takes a message POSTed to one of the broker's subscribers.
func (b *Broker) serveInbox(w nethttp.ResponseWriter, r *nethttp.Request) {
	if r.Method != nethttp.MethodPost {
		w.Header().Set("Allow", nethttp.MethodPost)
		nethttp.Error(w, "the inbox takes POST only", nethttp.StatusMethodNotAllowed)
		return
	}
	id := r.URL.Query().Get("id")
	b.mu.Lock()
	s := b.subs[id]
	b.mu.Unlock()
	if s == nil {
		nethttp.Error(w, fmt.Sprintf("no subscriber %q here", id), nethttp.StatusNotFound)
		return
	}
	body, err := io.ReadAll(nethttp.MaxBytesReader(w, r.Body, b.opts.maxMessageSize))
	if err != nil {
		var tooLarge *nethttp.MaxBytesError
		if errors.As(err, &tooLarge) {
			nethttp.Error(w, fmt.Sprintf("message over %d bytes", b.opts.maxMessageSize), nethttp.StatusRequestEntityTooLarge)
			return
		}
		nethttp.Error(w, "reading the message: "+err.Error(), nethttp.StatusBadRequest)
		return
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		s.Received()
		s.Undecodable(len(body), fmt.Errorf("not a go-micro broker message (JSON with Header and Body): %w", err))
		nethttp.Error(w, "not a broker message: "+err.Error(), nethttp.StatusBadRequest)
		return
	}
	topic := env.Header[TopicHeader]
	if topic != s.Topic() {
		s.Received()
		s.Undecodable(len(body), fmt.Errorf("header %s is %q, not the subscribed topic", TopicHeader, topic))
		nethttp.Error(w, fmt.Sprintf("topic %q, not the subscribed %q", topic, s.Topic()), nethttp.StatusBadRequest)
		return
	}
	delete(env.Header, TopicHeader)
	s.Offer(&broker.Event{Topic: topic, Message: broker.Message{Header: env.Header, Body: env.Body}})
	w.WriteHeader(nethttp.StatusAccepted)
}

// Publish POSTs m to every plain subscriber of topic and to one member of
// each queue group.
func (b *Broker) Publish(ctx context.Context, topic string, m *broker.Message) error {
	if err := broker.ValidateTopic(topic); err != nil {
		return fmt.Errorf("http broker: publish: %w", err)
	}
	env := envelope{Header: map[string]string{TopicHeader: topic}}
	if m != nil {
		if err := broker.ValidateHeader(m.Header); err != nil {
			return fmt.Errorf("http broker: publish to %s: %w", topic, err)
		}
		for k, v := range m.Header {
			env.Header[k] = v
		}
		env.Body = m.Body
	}
	body, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("http broker: publish to %s: encoding: %w", topic, err) // cannot happen
	}
	if int64(len(body)) > b.opts.maxMessageSize {
		return fmt.Errorf("http broker: publish to %s: %w: %d bytes encoded, over %d", topic, broker.ErrTooLarge, len(body), b.opts.maxMessageSize)
	}
	b.mu.Lock()
	usable, sel := b.connected && !b.closed, b.sel
	b.mu.Unlock()
	if !usable {
		return fmt.Errorf("http broker: %w", broker.ErrNotConnected)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.publishTimeout)
		defer cancel()
	}
	service := ServicePrefix + topic
	groups, err := sel.SelectVersions(ctx, service)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return nil // nobody listens
	case err != nil:
		return fmt.Errorf("http broker: publish to %s: looking up its subscribers: %w: %w", topic, broker.ErrUnavailable, err)
	}
	if len(groups) == 1 { // the common case: no goroutine
		for version, next := range groups {
			return b.publishError(topic, b.deliver(ctx, service, version, next, body))
		}
	}
	errs := make(chan error, len(groups))
	for version, next := range groups {
		go func() { errs <- b.deliver(ctx, service, version, next, body) }()
	}
	var all []error
	for range groups {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return b.publishError(topic, errors.Join(all...))
}

func (b *Broker) publishError(topic string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, broker.ErrTooLarge) {
		return fmt.Errorf("http broker: publish to %s: %w", topic, err)
	}
	return fmt.Errorf("http broker: publish to %s: %w: %w", topic, broker.ErrUnavailable, err)
}

// deliver sends body to the nodes of one version: every node for plain
// subscribers, the first that takes it for a queue group. A subscriber that
// answers it is gone (it unsubscribed; its registration has not yet
// reached this publisher's cache) is skipped without error.
func (b *Broker) deliver(ctx context.Context, service, version string, next selector.Next, body []byte) error {
	var errs []error
	for {
		n, err := next()
		if err != nil {
			break // no node left
		}
		err = b.post(ctx, n, body)
		var nd notDelivered
		switch {
		case err == nil:
			b.sel.Mark(service, n, nil)
			if version != broker.BroadcastVersion {
				return nil
			}
		case errors.Is(err, errGone):
			// not a failure of the node, nor of the publish
		case errors.As(err, &nd):
			b.sel.Mark(service, n, err)
			errs = append(errs, err)
		default:
			b.sel.Mark(service, n, err)
			if version != broker.BroadcastVersion {
				return fmt.Errorf("queue group %s: %w", version, err)
			}
			errs = append(errs, err)
		}
	}
	if version != broker.BroadcastVersion && len(errs) > 0 {
		return fmt.Errorf("queue group %s: no member took the message: %w", version, errors.Join(errs...))
	}
	return errors.Join(errs...)
}

// errGone is the error of a subscriber that answered 404: it is not there
// any more, so the message did not reach it.
var errGone = errors.New("subscriber gone")

// notDelivered marks an error after which the message certainly did not
// reach the subscriber (the connection could not be made).
type notDelivered struct{ error }

func (e notDelivered) Unwrap() error { return e.error }

// post sends body to node n's inbox.
func (b *Broker) post(ctx context.Context, n *registry.Node, body []byte) error {
	scheme := "http"
	if n.Metadata["secure"] == "true" {
		scheme = "https"
	}
	u := scheme + "://" + n.Address + SubPath + "?id=" + url.QueryEscape(n.ID)
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return notDelivered{fmt.Errorf("subscriber %s at %s: %w", n.ID, n.Address, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := b.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return notDelivered{fmt.Errorf("subscriber at %s unreachable: %w", n.Address, err)}
		}
		return fmt.Errorf("subscriber at %s: %w", n.Address, err)
	}
	defer rsp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(rsp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(rsp.Body, 64<<10)) // keep the connection reusable
	switch {
	case rsp.StatusCode/100 == 2:
		return nil
	case rsp.StatusCode == nethttp.StatusNotFound:
		return notDelivered{fmt.Errorf("subscriber at %s: %w (404 %s)", n.Address, errGone, strings.TrimSpace(string(msg)))}
	case rsp.StatusCode == nethttp.StatusRequestEntityTooLarge:
		return fmt.Errorf("subscriber at %s: %w (413 %s)", n.Address, broker.ErrTooLarge, strings.TrimSpace(string(msg)))
	default:
		return fmt.Errorf("subscriber at %s answered %s: %s", n.Address, rsp.Status, strings.TrimSpace(string(msg)))
	}
}
