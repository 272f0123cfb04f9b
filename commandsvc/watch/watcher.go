// Package watch is the bot's side of command services: it makes the
// services of the bot's namespace into chat commands. (Package commandsvc,
// above it, is the other side: the helper a command service is written
// with.)
//
// # Discovery
//
// A [Watcher] follows the registry: every service in the bot's namespace
// (default go.micro.bot) becomes a command named by the rest of its name
// (go.micro.bot.deploy is the command deploy). The namespace ends at a dot:
// go.micro.botany is not in go.micro.bot, and the namespace service itself
// is no command. The command is in the table as long as the service has at
// least one node: a Delete event for some nodes leaves it there, and it
// comes back when a node registers again.
//
// Its usage line and description come from the service's Command.Help.
// Until Help has answered, the command is listed with a placeholder
// ("deploy ... - command service go.micro.bot.deploy (help not available
// yet)") and can be run; Help is tried again with backoff (1 s doubling to 5
// min) until it answers, and again whenever a new node of the service
// appears.
//
// The watch loop starts over with backoff when the registry's watch breaks,
// and the whole namespace is listed again periodically (every 30 s by
// default) to repair whatever a lost event missed.
//
// A command service takes over the word of a replaceable built-in of the
// same name (echo, hello, ping, time, the three laws) while it is up; a
// service whose name is the first word of any other built-in of the table
// (help, list, get, query, call, health, register, deregister, and in the
// bot watch, unwatch, watching, publish) or a reserved word (confirm) is
// ignored with a logged warning. See package command.
//
// # Names
//
// Names are compared as the command table compares them, ignoring case
// ([command.Fold]): the namespace (GO.MICRO.BOT.deploy is in go.micro.bot)
// and the command (go.micro.bot.DEPLOY is the command deploy). Two services
// whose commands have the same name clash: the one that has the command
// keeps it, and the other is ignored with a logged warning while the first
// is up (it takes the command over when the first goes). When both are found
// at once (the first listing), the one whose name is already in folded form
// (go.micro.bot.deploy) wins. So a case variant of a service's name can
// neither take its command over, nor its restrictions off, nor remove it.
//
// # Running a command
//
// Running the command calls Command.Exec on the service with every word
// typed, the command word included (ExecRequest.Args = ["deploy", "web",
// "v2"]), under the command timeout (default 10 s) and never retried: a
// command may have side effects. A non-empty ExecResponse.error is shown as
// the command's error, ExecResponse.result as its reply. While it runs, the
// service can report its progress (commandsvc.Progress), which the bot
// shows before the reply: see Progress below.
//
// # Progress
//
// When the watcher has a broker
// ([WithBroker]), it follows one topic for the progress of every command
// it runs: commandsvc.ProgressTopicPrefix and 128 random bits, made up by
// New, so each bot process has its own (several bots side by side each
// follow theirs; no queue group). [Watcher.Run] subscribes to it as it
// starts, trying again with backoff while the broker cannot be reached,
// and keeps the subscription until it ends: a command costs no
// subscription (with the http broker, no write to the registry). The
// brokers keep the subscription alive by themselves: nats and mqtt make it
// again when their server comes back, and the http broker registers it
// again every register interval, so a registry that lost it (a restarted
// Consul agent) has it back within one.
//
// When the bot shows a command's progress (command.ProgressFrom gives a
// function), each Command.Exec call gets the topic and a run id of its own
// (128 random bits) in its request metadata (commandsvc.MetaProgress and
// MetaProgressRun), and each message on the topic whose header
// commandsvc.MetaProgressRun names the run is shown as lines of its
// progress. When Exec returns, the watcher flushes the broker when it can
// (broker.Flusher: a round trip to a NATS server, after which every
// message the server had sent the bot is received; nothing to wait for
// with http and memory), and then shows the messages the subscription has
// received (both within a second), then the run is over. As
// commandsvc.Progress flushes the service's broker after publishing, a
// line it reported before Exec returned is shown before the reply on http,
// memory and nats (one NATS server; see commandsvc's package documentation
// for a cluster, mqtt, and go-micro's publishers). A message
// for a run that is over, or that this watcher never gave, is dropped and
// counted ([WithProgressHook]): a command service that learns the topic
// cannot write into another command's thread without its run id. Until
// the subscription is made (the first moments after start; longer while
// the broker is down), commands get no topic: they run as they would
// without a broker, and nothing waits for it.
//
// Messages are read by proto/bot's Decode: a Notification (its title and
// text), a JSON string or text, any other JSON (on one line); protobuf of
// no named type is read as a Notification, as go-micro's client publishes
// one. Anything else is counted as undecodable by the broker and not
// shown.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/backoff"
	pb "github.com/microbot/microbot/proto/bot"
)

// Defaults of a Watcher (the namespace's is commandsvc.DefaultNamespace).
const (
	DefaultCommandTimeout = 10 * time.Second
	DefaultResync         = 30 * time.Second
	DefaultHelpTimeout    = 5 * time.Second
)

// Watcher keeps the command table in step with the command services in the
// registry. Run it with [Watcher.Run].
type Watcher struct {
	reg    registry.Registry
	caller command.Caller
	table  *command.Table
	opts   options

	progress *progress // nil without a broker

	ready     chan struct{}
	readyOnce sync.Once
}

type options struct {
	namespace       string
	timeout         time.Duration
	resync          time.Duration
	helpTimeout     time.Duration
	lookupTimeout   time.Duration
	helpBackoffMin  time.Duration
	helpBackoffMax  time.Duration
	watchBackoffMin time.Duration
	watchBackoffMax time.Duration
	helpConcurrency int
	helpCaller      command.Caller
	logger          *slog.Logger
	watchHook       func(*registry.Result)
	broker          Subscriber
	progressHook    func(outcome string)
}

// Option configures a Watcher.
type Option func(*options)

// WithNamespace sets the namespace whose services are commands.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithCommandTimeout bounds one Command.Exec call.
func WithCommandTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithResync sets how often the namespace is listed again in full.
func WithResync(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithHelpTimeout bounds one Command.Help call.
func WithHelpTimeout(d time.Duration) Option { return func(o *options) { o.helpTimeout = d } }

// WithHelpBackoff sets the first and longest wait before Help is tried again.
func WithHelpBackoff(min, max time.Duration) Option {
	return func(o *options) { o.helpBackoffMin, o.helpBackoffMax = min, max }
}

// WithWatchBackoff sets the first and longest wait before a broken registry
// watch is started again.
func WithWatchBackoff(min, max time.Duration) Option {
	return func(o *options) { o.watchBackoffMin, o.watchBackoffMax = min, max }
}

// WithHelpCaller makes the watcher call Command.Help through c (default: the
// caller given to New). Help goes straight to a node's address, once per
// service and node change, so a client without a pool of kept-alive
// connections (client.New(client.WithPoolSize(0))) avoids holding a connection
// open to every command service.
func WithHelpCaller(c command.Caller) Option { return func(o *options) { o.helpCaller = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithWatchHook sets a function told about every change the registry watch
// delivers, in the namespace or not (for metrics). It runs on the watch
// loop, so it must be quick, and must not change the result.
func WithWatchHook(f func(*registry.Result)) Option { return func(o *options) { o.watchHook = f } }

// New returns a Watcher that puts the command services found in reg into
// table and calls them through c.
func New(reg registry.Registry, c command.Caller, table *command.Table, opts ...Option) *Watcher {
	o := options{
		namespace:       commandsvc.DefaultNamespace,
		timeout:         DefaultCommandTimeout,
		resync:          DefaultResync,
		helpTimeout:     DefaultHelpTimeout,
		lookupTimeout:   5 * time.Second,
		helpBackoffMin:  time.Second,
		helpBackoffMax:  5 * time.Minute,
		watchBackoffMin: time.Second,
		watchBackoffMax: 30 * time.Second,
		helpConcurrency: 8,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	o.namespace = strings.TrimSuffix(o.namespace, ".")
	w := &Watcher{reg: reg, caller: c, table: table, opts: o, ready: make(chan struct{})}
	if o.broker != nil {
		w.progress = newProgress(o.broker, o.progressHook)
	}
	return w
}

// Ready is closed once the first listing of the namespace is done and every
// command found has answered Help or failed to once.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// CommandName returns the command a service is, and whether it is one: the
// service must be inside the namespace, at a dot boundary, and not the
// namespace itself.
func (w *Watcher) CommandName(service string) (string, bool) {
	return commandName(w.opts.namespace, service)
}

func commandName(ns, service string) (string, bool) {
	prefix := ns + "."
	if len(service) <= len(prefix) || command.Fold(service[:len(prefix)]) != command.Fold(prefix) {
		return "", false
	}
	return service[len(prefix):], true
}

// byPreference orders service names for checking: by their folded form, and
// among names with the same folded form the one already folded first, so it
// is the one that gets the command when they are found at once.
func byPreference(a, b string) int {
	fa, fb := command.Fold(a), command.Fold(b)
	if c := strings.Compare(fa, fb); c != 0 {
		return c
	}
	if (a == fa) != (b == fb) {
		if a == fa {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// svc is what the watcher knows of one command service. Only Run's
// goroutine touches it.
type svc struct {
	service string
	name    string
	nodes   []string         // sorted node ids
	addrs   []*registry.Node // one node per address, sorted, for Help
	meta    map[string]string

	usage, desc string
	helpOK      bool
	helping     bool      // a Help call is under way
	helpFails   int       // Help failures in a row
	helpAt      time.Time // when to call Help next, if !helpOK
	refused     bool      // not in the table: the name is reserved, or taken (clash)
	clash       bool      // refused because another service has the command
	initial     bool      // found by the first listing, Help not yet tried
}

type helpResult struct {
	service     string
	usage, desc string
	err         error
}

// Run follows the registry until ctx is done, keeping the table in step,
// and, with a broker, the progress topic (see [WithBroker]).
func (w *Watcher) Run(ctx context.Context) error {
	log := w.opts.logger.With("namespace", w.opts.namespace)
	if w.progress != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.progress.keep(ctx, w.opts.logger)
		}()
		defer func() { <-done }()
	}
	names := make(chan string, 256)
	rewatch := make(chan struct{}, 1)
	// The watch starts before the first listing, so a service registered
	// in between is in one or the other.
	wt, err := w.reg.Watch(ctx)
	go w.watch(ctx, log, wt, err, names, rewatch)

	l := &loop{w: w, log: log, svcs: map[string]*svc{}, owners: map[string]*svc{}, results: make(chan helpResult),
		sem: make(chan struct{}, max(w.opts.helpConcurrency, 1))}
	defer l.wg.Wait()
	l.resync(ctx, true)

	resync := time.NewTicker(w.opts.resync)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		l.startHelp(ctx)
		l.checkReady()
		retry.Reset(l.nextHelp())
		select {
		case <-ctx.Done():
			return nil
		case name := <-names:
			dirty := map[string]bool{name: true}
			for more := true; more; { // take every name queued
				select {
				case n := <-names:
					dirty[n] = true
				default:
					more = false
				}
			}
			for _, n := range slices.SortedFunc(maps.Keys(dirty), byPreference) {
				l.check(ctx, n)
			}
		case <-rewatch:
			l.resync(ctx, false)
		case <-resync.C:
			l.resync(ctx, false)
		case r := <-l.results:
			l.helped(r)
		case <-retry.C:
		}
	}
}

// watch streams the names of the namespace's services that changed, and
// starts the watch again with backoff when it breaks (asking for a resync,
// since events may have been lost). The first watch is the one Run started
// (first, or the error starting it).
func (w *Watcher) watch(ctx context.Context, log *slog.Logger, first registry.Watcher, firstErr error, names chan<- string, rewatch chan<- struct{}) {
	bo := backoff.Backoff{Min: w.opts.watchBackoffMin, Max: w.opts.watchBackoffMax}
	for ctx.Err() == nil {
		wt, err := first, firstErr
		if wt == nil && err == nil {
			wt, err = w.reg.Watch(ctx)
		}
		first, firstErr = nil, nil
		if err == nil {
			if bo.Failures() > 0 {
				log.Info("registry watch restored")
				select {
				case rewatch <- struct{}{}:
				default:
				}
			}
			bo.Reset()
			err = w.follow(ctx, wt, names)
			wt.Stop()
			if ctx.Err() != nil {
				return
			}
		}
		d := bo.Next()
		log.Warn("registry watch broke; starting it again", "err", err, "retry_in", d.Round(time.Millisecond))
		if !backoff.Sleep(ctx, d) {
			return
		}
	}
}

func (w *Watcher) follow(ctx context.Context, wt registry.Watcher, names chan<- string) error {
	for {
		r, err := wt.Next()
		if err != nil {
			return err
		}
		if r == nil || r.Service == nil {
			continue
		}
		if w.opts.watchHook != nil {
			w.opts.watchHook(r)
		}
		if _, ok := w.CommandName(r.Service.Name); !ok {
			continue
		}
		select {
		case names <- r.Service.Name:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// loop is the state of Run.
type loop struct {
	w       *Watcher
	log     *slog.Logger
	svcs    map[string]*svc // by service name
	owners  map[string]*svc // by folded command name: the service that has it
	results chan helpResult
	sem     chan struct{}
	wg      sync.WaitGroup
	primed  bool // the first listing is done
}

// resync lists the namespace and checks every service in it and every one
// known.
func (l *loop) resync(ctx context.Context, first bool) {
	lctx, cancel := context.WithTimeout(ctx, l.w.opts.lookupTimeout)
	list, err := l.w.reg.ListServices(lctx)
	cancel()
	if err != nil {
		l.log.Warn("listing services failed; will try again", "err", err, "in", l.w.opts.resync)
		if first {
			l.primed = true
		}
		return
	}
	names := map[string]bool{}
	for _, s := range list {
		if _, ok := l.w.CommandName(s.Name); ok {
			names[s.Name] = true
		}
	}
	for n := range l.svcs {
		names[n] = true
	}
	for _, n := range slices.SortedFunc(maps.Keys(names), byPreference) {
		l.check(ctx, n)
		if s := l.svcs[n]; s != nil && first {
			s.initial = true
		}
	}
	l.primed = true
}

// check looks the service up and brings its command in step.
func (l *loop) check(ctx context.Context, service string) {
	name, ok := l.w.CommandName(service)
	if !ok {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, l.w.opts.lookupTimeout)
	versions, err := l.w.reg.GetService(lctx, service)
	cancel()
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		if ctx.Err() == nil {
			l.log.Warn("looking up a command service failed; keeping what is known", "service", service, "err", err)
		}
		return
	}
	var nodes []string
	var addrs []*registry.Node
	meta := map[string]string{}
	for _, v := range versions {
		for _, n := range v.Nodes {
			nodes = append(nodes, n.ID)
			addrs = append(addrs, client.Target(n))
		}
		for k, val := range v.Metadata {
			if _, dup := meta[k]; !dup {
				meta[k] = val
			}
		}
	}
	policyMeta(meta, versions)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	byAddress := func(a, b *registry.Node) int { return strings.Compare(a.Address, b.Address) }
	slices.SortFunc(addrs, byAddress)
	addrs = slices.CompactFunc(addrs, func(a, b *registry.Node) bool { return a.Address == b.Address })
	s := l.svcs[service]
	if len(nodes) == 0 {
		if s != nil {
			l.gone(s)
		}
		return
	}
	meta[command.MetaService] = service
	if s == nil {
		s = &svc{service: service, name: name, meta: meta, nodes: nodes, addrs: addrs}
		l.svcs[service] = s
		s.helpAt = time.Now()
		l.put(s)
		if !s.refused {
			l.log.Info("command found", "command", name, "service", service, "nodes", len(nodes))
		}
		return
	}
	s.addrs = addrs
	if s.refused {
		s.nodes, s.meta = nodes, meta
		return
	}
	newNode := false
	for _, id := range nodes {
		if _, found := slices.BinarySearch(s.nodes, id); !found {
			newNode = true
			break
		}
	}
	s.nodes = nodes
	if newNode { // maybe a new release: ask for its help again
		s.helpOK, s.helpFails, s.helpAt = false, 0, time.Now()
	}
	if !maps.Equal(meta, s.meta) {
		s.meta = meta
		l.put(s)
	}
}

// PolicyPrefix starts the metadata keys by which a command service declares
// access rules for itself (bot.group, bot.confirm: see package
// bot/access). They are read from the service's metadata and from every
// node's (framework.WithMetadata and --server_metadata set node metadata); the
// command's Metadata holds each such key with every distinct value found,
// sorted, one per line, so that when nodes disagree (a rolling upgrade) a
// policy can obey them all.
const PolicyPrefix = "bot."

// policyMeta puts the PolicyPrefix keys of versions and their nodes in meta.
func policyMeta(meta map[string]string, versions []*registry.Service) {
	vals := map[string][]string{}
	add := func(md map[string]string) {
		for k, v := range md {
			if strings.HasPrefix(k, PolicyPrefix) && !slices.Contains(vals[k], v) {
				vals[k] = append(vals[k], v)
			}
		}
	}
	for _, v := range versions {
		add(v.Metadata)
		for _, n := range v.Nodes {
			add(n.Metadata)
		}
	}
	for k, vs := range vals {
		slices.Sort(vs)
		meta[k] = strings.Join(vs, "\n")
	}
}

// gone forgets s, whose service has no node left, and removes its command;
// a service whose command clashed with it then takes the command over.
func (l *loop) gone(s *svc) {
	delete(l.svcs, s.service)
	key := command.Fold(s.name)
	if s.refused || l.owners[key] != s {
		return
	}
	delete(l.owners, key)
	l.w.table.Remove(s.name)
	l.log.Info("command gone: its service has no node left", "command", s.name, "service", s.service)
	var next *svc
	for _, o := range l.svcs {
		if o.clash && command.Fold(o.name) == key && (next == nil || byPreference(o.service, next.service) < 0) {
			next = o
		}
	}
	if next == nil {
		return
	}
	next.refused, next.clash = false, false
	next.helpOK, next.helpFails, next.helpAt = false, 0, time.Now()
	l.put(next)
	if !next.refused {
		l.log.Info("command found: the service it clashed with is gone", "command", next.name, "service", next.service, "nodes", len(next.nodes))
	}
}

// put puts s's command in the table, unless another service has a command
// of the same name.
func (l *loop) put(s *svc) {
	key := command.Fold(s.name)
	if o := l.owners[key]; o != nil && o != s {
		if !s.clash {
			l.log.Warn("ignoring a command service: another service has a command of the same name (names are compared ignoring case)",
				"service", s.service, "command", s.name, "taken_by", o.service)
		}
		s.refused, s.clash = true, true
		return
	}
	usage, desc := s.usage, s.desc
	if usage == "" {
		usage = s.name + " ..."
	}
	if desc == "" {
		desc = "command service " + s.service + " (help not available yet)"
	}
	err := l.w.table.Put(&command.Command{
		Name:        s.name,
		Usage:       usage,
		Description: desc,
		Metadata:    s.meta,
		Run:         l.w.exec(s.service),
	})
	switch {
	case errors.Is(err, command.ErrReserved):
		s.refused = true
		l.log.Warn("ignoring a command service: its name is a built-in command's that cannot be replaced", "service", s.service, "command", s.name)
	case err != nil:
		s.refused = true
		l.log.Warn("ignoring a command service", "service", s.service, "err", err)
	default:
		l.owners[key] = s
	}
}

// startHelp starts the Help calls that are due, as many as allowed at once.
func (l *loop) startHelp(ctx context.Context) {
	now := time.Now()
	for _, s := range l.svcs {
		if s.refused || s.helpOK || s.helping || s.helpAt.After(now) {
			continue
		}
		select {
		case l.sem <- struct{}{}:
		default:
			return
		}
		s.helping = true
		addr := s.addrs[s.helpFails%len(s.addrs)] // another node after each failure
		l.wg.Go(func() {
			defer func() { <-l.sem }()
			r := l.w.help(ctx, s.service, addr)
			select {
			case l.results <- r:
			case <-ctx.Done():
			}
		})
	}
}

// helped records the outcome of a Help call.
func (l *loop) helped(r helpResult) {
	s := l.svcs[r.service]
	if s == nil {
		return
	}
	s.helping, s.initial = false, false
	if r.err != nil {
		d := backoff.Delay(l.w.opts.helpBackoffMin, l.w.opts.helpBackoffMax, s.helpFails)
		s.helpFails++
		s.helpAt = time.Now().Add(d)
		l.log.Warn("command help failed; the command stays listed with a placeholder", "command", s.name, "err", r.err, "retry_in", d.Round(time.Millisecond))
		return
	}
	s.helpOK, s.helpFails = true, 0
	if r.usage != s.usage || r.desc != s.desc {
		s.usage, s.desc = r.usage, r.desc
		l.put(s)
	}
}

// nextHelp returns how long until the next Help call is due.
func (l *loop) nextHelp() time.Duration {
	next := time.Hour
	now := time.Now()
	for _, s := range l.svcs {
		if s.refused || s.helpOK || s.helping {
			continue
		}
		next = min(next, max(s.helpAt.Sub(now), time.Millisecond))
	}
	return next
}

// checkReady closes Ready once the first listing is done and its commands
// have all been tried.
func (l *loop) checkReady() {
	if !l.primed {
		return
	}
	for _, s := range l.svcs {
		if s.initial && !s.refused {
			return
		}
	}
	l.w.readyOnce.Do(func() { close(l.w.ready) })
}

// help calls Command.Help on a node of service, in the dialect its
// metadata says it speaks (a go-micro command service may be of any
// version).
func (w *Watcher) help(ctx context.Context, service string, node *registry.Node) helpResult {
	ctx, cancel := context.WithTimeout(ctx, w.opts.helpTimeout)
	defer cancel()
	var rsp pb.HelpResponse
	c := w.opts.helpCaller
	if c == nil {
		c = w.caller
	}
	err := c.Call(ctx, service, "Command.Help", &pb.HelpRequest{}, &rsp, client.WithNode(node),
		client.WithContentType("application/protobuf"), client.WithRequestTimeout(w.opts.helpTimeout))
	r := helpResult{service: service, err: err}
	if err == nil {
		// One line each in help: no line or control character of theirs.
		r.usage = input.PrintableLine(strings.TrimSpace(rsp.GetUsage()))
		r.desc = input.PrintableLine(strings.TrimSpace(rsp.GetDescription()))
		if name, _ := w.CommandName(service); r.usage == "" {
			r.usage = name
		}
	}
	return r
}

// exec returns the Run of the command served by service: Command.Exec,
// never retried, under the command timeout.
func (w *Watcher) exec(service string) command.RunFunc {
	return func(ctx context.Context, req *command.Request) (*input.Reply, error) {
		ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
		defer cancel()
		if report := command.ProgressFrom(ctx); report != nil && w.progress != nil {
			var end func()
			ctx, end = w.progress.start(ctx, report)
			defer end()
		}
		var rsp pb.ExecResponse
		err := w.caller.Call(ctx, service, "Command.Exec", &pb.ExecRequest{Args: req.Args()}, &rsp,
			client.WithContentType("application/protobuf"), client.WithRequestTimeout(w.opts.timeout), client.WithRetries(0))
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("command service %s did not answer within %s", service, w.opts.timeout)
			}
			return nil, fmt.Errorf("command service %s failed: %w", service, err)
		}
		if e := rsp.GetError(); e != "" {
			return nil, errors.New(e)
		}
		return command.Text(string(rsp.GetResult())), nil
	}
}
