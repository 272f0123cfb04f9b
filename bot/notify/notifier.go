package notify

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/backoff"
)

// Defaults of a Notifier.
const (
	// DefaultInterval is the least time between two posts in one room.
	DefaultInterval = time.Second
	// DefaultRoomQueue is how many events wait for their turn in one room;
	// more are folded into a summary ("+N more on TOPIC").
	DefaultRoomQueue = 5
	// DefaultTopicQueue is how many events of one topic the broker queues
	// while the notifier is busy (broker.WithMaxPending); more are dropped
	// by the broker, and counted.
	DefaultTopicQueue = 1024
	// DefaultSendTimeout bounds one post, rate limits waited out included.
	DefaultSendTimeout = 30 * time.Second
	// retryEvery is how often subscriptions that failed are tried again.
	retryEvery = 5 * time.Second
)

// Outcomes of an event in a room, the outcome of the hook (see WithHook).
const (
	OutcomePosted  = "posted"  // posted in the room
	OutcomeFolded  = "folded"  // counted in a summary instead (the room was busy)
	OutcomeDropped = "dropped" // not posted: the post failed, or the input cannot post
)

// Hook is told about events: received (once per event, outcome
// "received") and the outcome in each room it went to (OutcomePosted,
// OutcomeFolded, OutcomeDropped). It must be quick: it runs on the
// delivery's path.
type Hook func(topic, outcome string)

// OutcomeReceived is the outcome the hook gets once per event received.
const OutcomeReceived = "received"

// Notifier subscribes to the topics rooms watch (and the routes file
// routes), one broker subscription per topic shared by its rooms, and
// posts each event in each of them, paced: at most one post per room per
// interval, at most a few events waiting per room, the rest folded into a
// summary. Build it with New and run it with Run.
type Notifier struct {
	b       broker.Broker
	store   *Store
	posters map[string]input.Poster
	o       options
	threads Threads
	logs    *limiter
	keys    eventKeys

	recMu   sync.Mutex    // serialises reconciliations
	started chan struct{} // closed when Run starts

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	watches []Watch         // as last listed
	routes  *Routes
	topics  map[string]*topicSub
	rooms   map[Place]*room
	retired broker.Stats // counters of the subscriptions that ended
	listErr error        // the last listing of the store, if it failed

	workers sync.WaitGroup
}

// topicSub is the subscription of one topic and the rooms it feeds.
type topicSub struct {
	sub    broker.Subscriber // nil until subscribed
	err    error             // why subscribing failed, if it did
	places []Place
}

// room is the pacing state of one room.
type room struct {
	place        Place
	queue        []item         // waiting for their turn, at most roomQueue (more after a takeover)
	held         []item         // kept while this instance stands by for the room's input
	replay       int            // the first of queue are held ones, after a takeover (not counted against roomQueue)
	folded       map[string]int // events folded, by topic
	order        []string       // topics of folded, in the order they first folded
	sinceSummary int            // posts since the last summary
	firstFolded  string         // key of the first event folded since the last summary
	running      bool           // a worker posts for it
	last         time.Time      // of the last post (the worker's)
}

type item struct {
	topic string
	r     rendered
	key   string    // the event's key among the instances (see eventKeys)
	at    time.Time // when it was received
}

type options struct {
	log         *slog.Logger
	interval    time.Duration
	roomQueue   int
	topicQueue  int
	sendTimeout time.Duration
	queue       string
	routesFile  string
	hook        Hook
	threads     Threads
	claimer     Claimer
	hold        time.Duration
	holdQueue   int
}

// Option configures a Notifier.
type Option func(*options)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithInterval sets the least time between two posts in one room (default
// DefaultInterval).
func WithInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithRoomQueue sets how many events wait per room before the next ones
// are folded into a summary (default DefaultRoomQueue).
func WithRoomQueue(n int) Option { return func(o *options) { o.roomQueue = n } }

// WithTopicQueue sets how many events of a topic the broker queues for the
// notifier (default DefaultTopicQueue).
func WithTopicQueue(n int) Option { return func(o *options) { o.topicQueue = n } }

// WithSendTimeout bounds one post (default DefaultSendTimeout).
func WithSendTimeout(d time.Duration) Option { return func(o *options) { o.sendTimeout = d } }

// WithQueueGroup makes every subscription a member of the queue group
// name (broker.WithQueue), so that bots sharing the name (instances of one
// bot, all seeing the same watches) share the events: each event goes to
// one of them, which posts it in every room watching its topic. Empty:
// every bot gets every event.
func WithQueueGroup(name string) Option { return func(o *options) { o.queue = name } }

// WithRoutesFile reads static routes from path (see Routes); Reload reads
// it again.
func WithRoutesFile(path string) Option { return func(o *options) { o.routesFile = path } }

// WithHook sets the function told about every event (for metrics).
func WithHook(h Hook) Option { return func(o *options) { o.hook = h } }

// WithThreads sets where the thread each thread key started is kept
// (default: in memory, the last DefaultMaxThreads keys, see MemoryThreads).
// Bots sharing a queue group share each key's thread through a store they
// all read.
func WithThreads(t Threads) Option { return func(o *options) { o.threads = t } }

// New returns a notifier that subscribes on b to the topics of the watches
// in store (and of the routes file) and posts their events through
// posters, by input name (as events name the input: "slack", "xmpp",
// "shell"). A routes file that does not load is an error.
func New(b broker.Broker, store *Store, posters map[string]input.Poster, opts ...Option) (*Notifier, error) {
	o := options{interval: DefaultInterval, roomQueue: DefaultRoomQueue, topicQueue: DefaultTopicQueue, sendTimeout: DefaultSendTimeout, hold: DefaultHold, holdQueue: DefaultHoldQueue}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.hook == nil {
		o.hook = func(string, string) {}
	}
	if o.threads == nil {
		o.threads = MemoryThreads(DefaultMaxThreads)
	}
	switch {
	case b == nil || store == nil:
		return nil, fmt.Errorf("notify: a broker and a store are needed")
	case o.interval < 0, o.roomQueue < 1, o.topicQueue < 1, o.sendTimeout <= 0, o.hold < 0, o.holdQueue < 1:
		return nil, fmt.Errorf("notify: interval %v, room queue %d, topic queue %d, send timeout %v: want a positive queue and timeout and no negative interval",
			o.interval, o.roomQueue, o.topicQueue, o.sendTimeout)
	}
	if o.queue != "" {
		if err := broker.ValidateQueue(o.queue); err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		if o.claimer != nil {
			return nil, fmt.Errorf("notify: a queue group and a claimer: with a claimer every instance must receive every event")
		}
	}
	n := &Notifier{
		b: b, store: store, posters: maps.Clone(posters), o: o,
		threads: o.threads,
		logs:    &limiter{every: time.Minute, last: map[string]time.Time{}},
		topics:  map[string]*topicSub{},
		rooms:   map[Place]*room{},
		started: make(chan struct{}),
	}
	if o.routesFile != "" {
		r, err := LoadRoutes(o.routesFile, n.Inputs())
		if err != nil {
			return nil, err
		}
		n.routes = r
	}
	return n, nil
}

// Inputs returns the names of the inputs the notifier posts on, sorted.
func (n *Notifier) Inputs() []string { return slices.Sorted(maps.Keys(n.posters)) }

// Run follows the watches in the store (a blocking List), subscribes to
// their topics and posts the events, until ctx ends; then it ends the
// subscriptions and returns once the posts under way are done (each
// bounded by the send timeout); the events still waiting are dropped.
func (n *Notifier) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.ctx != nil {
		n.mu.Unlock()
		return fmt.Errorf("notify: Run called twice")
	}
	n.ctx = ctx
	n.mu.Unlock()
	close(n.started)
	defer n.stop()
	n.reconcile(ctx) // the routes, at once
	retry := time.NewTicker(retryEvery)
	defer retry.Stop()
	listed := make(chan struct{}, 1)
	go n.follow(ctx, listed)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-listed:
		case <-retry.C:
			if !n.failing() {
				continue
			}
		}
		n.reconcile(ctx)
	}
}

// follow lists the store again at each change, and signals listed.
func (n *Notifier) follow(ctx context.Context, listed chan<- struct{}) {
	bo := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	var index uint64
	for ctx.Err() == nil {
		ws, idx, err := n.store.List(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := bo.Next()
			n.mu.Lock()
			n.listErr = err
			n.mu.Unlock()
			n.logs.warn(n.o.log, "list", "reading the watches failed; the ones known stay in effect", "err", err, "retry_in", d.Round(time.Millisecond))
			if !backoff.Sleep(ctx, d) {
				return
			}
			continue
		}
		bo.Reset()
		index = idx
		n.mu.Lock()
		n.watches, n.listErr = ws, nil
		n.mu.Unlock()
		select {
		case listed <- struct{}{}:
		default:
		}
	}
}

// Refresh reads the watches again and subscribes or unsubscribes at once,
// so that a command that changed them can say they are in effect. It
// waits for Run to start (as long as ctx allows), and does nothing once
// Run has returned.
func (n *Notifier) Refresh(ctx context.Context) error {
	select {
	case <-n.started:
	case <-ctx.Done():
		return fmt.Errorf("the notifier is not running: %w", ctx.Err())
	}
	n.mu.Lock()
	running := n.ctx.Err() == nil
	n.mu.Unlock()
	if !running {
		return nil
	}
	ws, _, err := n.store.List(ctx, 0)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.watches = ws
	n.mu.Unlock()
	n.reconcile(ctx)
	return nil
}

// Reload reads the routes file again; a file that does not load is logged
// and the routes in effect stay.
func (n *Notifier) Reload() error {
	if n.o.routesFile == "" {
		return nil
	}
	r, err := LoadRoutes(n.o.routesFile, n.Inputs())
	if err != nil {
		n.o.log.Error("the routes file does not load; keeping the routes in effect", "err", err)
		return err
	}
	n.mu.Lock()
	n.routes = r
	ctx := n.ctx
	n.mu.Unlock()
	n.o.log.Info("routes reloaded", "file", r.File(), "routes", r.Len())
	if ctx != nil && ctx.Err() == nil {
		n.reconcile(ctx)
	}
	return nil
}

// failing reports whether a subscription is missing.
func (n *Notifier) failing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ts := range n.topics {
		if ts.sub == nil {
			return true
		}
	}
	return false
}

// desiredLocked returns the rooms of each topic the watches and routes
// ask for; n.mu must be held.
func (n *Notifier) desiredLocked() map[string][]Place {
	want := map[string][]Place{}
	add := func(topic string, p Place) {
		if !slices.Contains(want[topic], p) {
			want[topic] = append(want[topic], p)
		}
	}
	for _, w := range n.watches {
		add(w.Topic, w.Place)
	}
	for _, t := range n.routes.Topics() {
		for _, p := range n.routes.Places(t) {
			add(t, p)
		}
	}
	return want
}

// reconcile subscribes to the topics wanted and not subscribed, and ends
// the subscriptions no longer wanted.
func (n *Notifier) reconcile(ctx context.Context) {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	n.mu.Lock()
	want := n.desiredLocked()
	var stop []broker.Subscriber
	for t, ts := range n.topics {
		if _, ok := want[t]; !ok {
			if ts.sub != nil {
				stop = append(stop, ts.sub)
			}
			delete(n.topics, t)
		}
	}
	var start []string
	for t, places := range want {
		ts := n.topics[t]
		if ts == nil {
			ts = &topicSub{}
			n.topics[t] = ts
		}
		ts.places = places
		if ts.sub == nil {
			start = append(start, t)
		}
	}
	n.mu.Unlock()
	for _, s := range stop {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := s.Unsubscribe(uctx)
		cancel()
		st := s.Stats()
		n.mu.Lock()
		n.retired = addStats(n.retired, st)
		n.mu.Unlock()
		if err != nil {
			n.o.log.Warn("unsubscribing", "topic", s.Topic(), "err", err)
		} else {
			n.o.log.Info("unsubscribed: nobody watches the topic any more", "topic", s.Topic())
		}
	}
	slices.Sort(start)
	for _, t := range start {
		opts := []broker.SubscribeOption{broker.WithMaxPending(n.o.topicQueue)}
		if n.o.queue != "" {
			opts = append(opts, broker.WithQueue(n.o.queue))
		}
		sub, err := n.b.Subscribe(ctx, t, n.handle, opts...)
		n.mu.Lock()
		ts := n.topics[t]
		if ts != nil {
			ts.sub, ts.err = sub, err
		}
		n.mu.Unlock()
		switch {
		case err != nil:
			n.logs.warn(n.o.log, "subscribe "+t, "subscribing failed; trying again", "topic", t, "err", err, "retry_in", retryEvery)
		case ts == nil: // no longer wanted (cannot happen under recMu, but cheap)
			_ = sub.Unsubscribe(ctx)
		default:
			n.o.log.Info("subscribed", "topic", t, "queue_group", n.o.queue)
		}
	}
}

// handle is the handler of every subscription: it renders the event once
// and hands it to each room of its topic.
func (n *Notifier) handle(ctx context.Context, e *broker.Event) error {
	n.o.hook(e.Topic, OutcomeReceived)
	n.mu.Lock()
	var places []Place
	if ts := n.topics[e.Topic]; ts != nil {
		places = slices.Clone(ts.places)
	}
	n.mu.Unlock()
	if len(places) == 0 {
		return nil // unwatched meanwhile
	}
	r := n.render(e)
	key := ""
	if n.o.claimer != nil {
		key = n.keys.key(e)
	}
	at := time.Now()
	for _, p := range places {
		n.deliver(p, item{topic: e.Topic, r: r, key: key, at: at})
	}
	return nil
}

// render renders e, turning a panic into a post that says so.
func (n *Notifier) render(e *broker.Event) (r rendered) {
	defer func() {
		if p := recover(); p != nil {
			n.o.log.Error("panic rendering an event", "topic", e.Topic, "size", len(e.Body), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			r = named(e.Topic, fmt.Sprintf("a message of %s on %s that could not be shown (it was logged)", size(len(e.Body)), e.Topic), KindOther)
		}
	}()
	return render(e, time.Now())
}

// deliver queues it in place's room, or folds it when the room's queue is
// full, and starts the room's worker if it is idle. A room of an input this
// instance stands by for keeps its latest events instead of folding (see
// WithClaimer).
func (n *Notifier) deliver(place Place, it item) {
	n.mu.Lock()
	defer n.mu.Unlock()
	topic := it.topic
	if n.ctx == nil || n.ctx.Err() != nil {
		n.o.hook(topic, OutcomeDropped)
		return
	}
	rm := n.rooms[place]
	if rm == nil {
		rm = &room{place: place, folded: map[string]int{}}
		n.rooms[place] = rm
	}
	switch {
	case n.standing(place):
		if len(rm.held) >= n.o.holdQueue {
			n.o.hook(rm.held[0].topic, OutcomeElsewhere)
			rm.held[0] = item{}
			rm.held = rm.held[1:]
		}
		rm.held = append(rm.held, it)
	case len(rm.queue)-rm.replay < n.o.roomQueue:
		rm.queue = append(rm.queue, it)
	default:
		if len(rm.folded) == 0 {
			rm.firstFolded = it.key
		}
		if rm.folded[topic] == 0 {
			rm.order = append(rm.order, topic)
		}
		rm.folded[topic]++
		n.o.hook(topic, OutcomeFolded)
	}
	if !rm.running {
		rm.running = true
		n.workers.Add(1)
		go n.work(n.ctx, rm)
	}
}

// work posts the events of one room, one per interval: the queued ones in
// order, and a summary of the folded ones once the queue is empty or
// after every roomQueue posts. It ends when the room has nothing left (at
// least an interval after its last post, so a new worker keeps the pace).
func (n *Notifier) work(ctx context.Context, rm *room) {
	defer n.workers.Done()
	for {
		if wait := time.Until(rm.last.Add(n.o.interval)); ctx.Err() != nil || wait > 0 && !backoff.Sleep(ctx, wait) {
			n.drop(rm)
			return
		}
		if n.hold(rm) {
			if !backoff.Sleep(ctx, holdPoll) {
				n.drop(rm)
				return
			}
			continue
		}
		n.mu.Lock()
		var it item
		summary, summaryKey := "", ""
		switch {
		case len(rm.folded) > 0 && (len(rm.queue) == 0 || rm.sinceSummary >= n.o.roomQueue):
			lines := make([]string, 0, len(rm.order))
			for _, t := range rm.order {
				lines = append(lines, fmt.Sprintf("+%d more on %s", rm.folded[t], t))
			}
			summary, summaryKey = strings.Join(lines, "\n"), rm.firstFolded
			rm.folded, rm.order, rm.sinceSummary, rm.firstFolded = map[string]int{}, nil, 0, ""
		case len(rm.queue) > 0:
			it = rm.queue[0]
			rm.queue[0] = item{}
			rm.queue = rm.queue[1:]
			rm.sinceSummary++
			if rm.replay > 0 {
				rm.replay--
			}
		default:
			rm.running = false
			delete(n.rooms, rm.place)
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		switch {
		case summary != "":
			if n.claim(ctx, rm.place, "summary:"+summaryKey) {
				n.post(ctx, rm.place, "", rendered{post: input.Post{Text: summary}}, true)
				rm.last = time.Now()
			}
		case !n.claim(ctx, rm.place, it.key):
			// Another instance posts it, about when it came: keep its
			// pace rather than post the next at once.
			n.o.hook(it.topic, OutcomeElsewhere)
			rm.last = it.at
		default:
			n.post(ctx, rm.place, it.topic, it.r, false)
			rm.last = time.Now()
		}
	}
}

// hold reports whether rm's input is one this instance stands by for, and
// the room keeps events: its worker waits then, and the events kept past
// the hold (WithHold) are let go, the active instance had them too. Once
// this instance serves the input, the events kept go first in the queue,
// to be claimed and posted one by one (not folded: they are what a
// takeover must not lose).
func (n *Notifier) hold(rm *room) bool {
	standing := n.standing(rm.place)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !standing {
		if len(rm.held) > 0 {
			rm.queue = append(rm.held, rm.queue...)
			rm.replay += len(rm.held)
			rm.held = nil
		}
		return false
	}
	// What was queued or folded before is the active instance's now.
	for _, it := range rm.queue {
		n.o.hook(it.topic, OutcomeElsewhere)
	}
	rm.queue, rm.replay = nil, 0
	rm.folded, rm.order, rm.sinceSummary, rm.firstFolded = map[string]int{}, nil, 0, ""
	for len(rm.held) > 0 && time.Since(rm.held[0].at) > n.o.hold {
		n.o.hook(rm.held[0].topic, OutcomeElsewhere)
		rm.held[0] = item{}
		rm.held = rm.held[1:]
	}
	return len(rm.held) > 0
}

// drop counts the events a stopping room leaves unposted.
func (n *Notifier) drop(rm *room) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, it := range rm.queue {
		n.o.hook(it.topic, OutcomeDropped)
	}
	for _, it := range rm.held {
		n.o.hook(it.topic, OutcomeElsewhere)
	}
	rm.queue, rm.held, rm.replay, rm.running = nil, nil, 0, false
	delete(n.rooms, rm.place)
}

// post posts r in place (in the thread of its thread key, remembering the
// thread a first post starts) and counts the outcome; a summary is not an
// event and is not counted.
func (n *Notifier) post(ctx context.Context, place Place, topic string, r rendered, summary bool) {
	count := func(outcome string) {
		if !summary {
			n.o.hook(topic, outcome)
		}
	}
	poster := n.posters[place.Input]
	if poster == nil {
		count(OutcomeDropped)
		n.logs.warn(n.o.log, "input "+place.Input, "an event for a room of an input that cannot post here; dropped", "room", place.String(), "topic", topic)
		return
	}
	p := r.post
	p.Room = place.Room
	if r.threadKey != "" {
		thread, err := n.threads.Get(ctx, place, r.threadKey)
		if err != nil {
			n.logs.warn(n.o.log, "threads get", "the thread of a thread key could not be read; posting at the top", "room", place.String(), "err", err)
		}
		p.Thread = thread
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.o.sendTimeout)
	defer cancel()
	posted, err := poster.Post(pctx, &p)
	if err != nil {
		count(OutcomeDropped)
		n.logs.warn(n.o.log, "post "+place.String(), "posting an event failed; dropped", "room", place.String(), "topic", topic, "err", err)
		return
	}
	count(OutcomePosted)
	if r.threadKey != "" && posted.Thread != "" {
		if err := n.threads.Put(ctx, place, r.threadKey, posted.Thread); err != nil {
			n.logs.warn(n.o.log, "threads put", "the thread of a thread key could not be kept", "room", place.String(), "err", err)
		}
	}
}

// stop ends the subscriptions and waits for the room workers.
func (n *Notifier) stop() {
	n.recMu.Lock()
	n.mu.Lock()
	var subs []broker.Subscriber
	for t, ts := range n.topics {
		if ts.sub != nil {
			subs = append(subs, ts.sub)
		}
		delete(n.topics, t)
	}
	n.mu.Unlock()
	n.recMu.Unlock()
	for _, s := range subs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Unsubscribe(ctx); err != nil {
			n.o.log.Debug("unsubscribing at stop", "topic", s.Topic(), "err", err)
		}
		cancel()
		n.mu.Lock()
		n.retired = addStats(n.retired, s.Stats())
		n.mu.Unlock()
	}
	n.workers.Wait()
}

// TopicState is what `watching` shows of a topic's subscription.
type TopicState struct {
	Topic string
	// Subscribed is true once the broker subscription is made.
	Subscribed bool
	// Err is why subscribing failed, if it did.
	Err error
	// Places are the rooms the topic's events go to.
	Places []Place
}

// Topics returns the state of every topic, sorted.
func (n *Notifier) Topics() []TopicState {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]TopicState, 0, len(n.topics))
	for _, t := range slices.Sorted(maps.Keys(n.topics)) {
		ts := n.topics[t]
		out = append(out, TopicState{Topic: t, Subscribed: ts.sub != nil, Err: ts.err, Places: slices.Clone(ts.places)})
	}
	return out
}

// Routes returns the routes in effect (nil without a routes file).
func (n *Notifier) Routes() *Routes {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.routes
}

// BrokerStats returns the counters of the notifier's subscriptions, those
// ended included: Dropped counts the events the broker dropped because the
// notifier fell behind by more than the topic queue.
func (n *Notifier) BrokerStats() broker.Stats {
	n.mu.Lock()
	st := n.retired
	var subs []broker.Subscriber
	for _, ts := range n.topics {
		if ts.sub != nil {
			subs = append(subs, ts.sub)
		}
	}
	n.mu.Unlock()
	for _, s := range subs {
		st = addStats(st, s.Stats())
	}
	return st
}

// Backlog returns how many events wait in rooms, and how many are folded,
// right now.
func (n *Notifier) Backlog() (queued, folded int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, rm := range n.rooms {
		queued += len(rm.queue) + len(rm.held)
		for _, c := range rm.folded {
			folded += c
		}
	}
	return queued, folded
}

func addStats(a, b broker.Stats) broker.Stats {
	return broker.Stats{
		Received: a.Received + b.Received, Handled: a.Handled + b.Handled, Failed: a.Failed + b.Failed,
		Panicked: a.Panicked + b.Panicked, Undecodable: a.Undecodable + b.Undecodable,
		Dropped: a.Dropped + b.Dropped, Pending: a.Pending + b.Pending,
	}
}

// limiter logs a warning of one kind at most once per period, saying how
// many were left out meanwhile.
type limiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	quiet map[string]int
}

// warn logs msg as a warning unless a warning of kind was logged within
// the period.
func (l *limiter) warn(log *slog.Logger, kind, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last[kind]) < l.every {
		if l.quiet == nil {
			l.quiet = map[string]int{}
		}
		l.quiet[kind]++
		l.mu.Unlock()
		return
	}
	if len(l.last) > 1000 { // bounded: forget every kind
		clear(l.last)
		clear(l.quiet)
	}
	l.last[kind] = now
	skipped := l.quiet[kind]
	delete(l.quiet, kind)
	l.mu.Unlock()
	if skipped > 0 {
		args = append(args, "similar_warnings_left_out", skipped)
	}
	log.Warn(msg, args...)
}
