package ops

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/input"
)

// Label values standing for many.
const (
	// Unknown is the command label of a line that matched no command, and
	// the service label of a call to a service the registry does not know.
	Unknown = "unknown"
	// Other is the label of a value past the cap on distinct values.
	Other = "other"
)

// Outcomes of a command, the outcome label of microbot_commands_total (the
// audit log's outcome field uses the same words).
const (
	OutcomeOK    = "ok"    // a reply that is not an error
	OutcomeError = "error" // an error reply (failed, timed out, unknown command, refused)
	OutcomeNone  = "none"  // no reply (a middleware kept quiet)
	OutcomePanic = "panic" // a middleware panicked (the bot answers "internal error")
)

// DefaultMaxLabels caps the distinct values of the command and service
// labels; values past it are counted under "other".
const DefaultMaxLabels = 500

// clientErrorID is the id of the errors framework/client makes itself; its
// 404 means the registry has no such service (a test pins it).
const clientErrorID = "go.micro.client"

// Metrics are the bot's Prometheus collectors, in a registry of their own
// (not the global default). Hook them in with [Metrics.Middleware],
// [Metrics.WrapCall], [Metrics.InputHook], [Metrics.WatchHook] and
// [Metrics.WatchInputs]; serve them with [Metrics.Registry] (or
// [NewServer]). Their names:
//
//	microbot_commands_total{command,outcome}           commands run (outcome ok, error, none, panic)
//	microbot_command_duration_seconds{command}         how long commands took, reply included
//	microbot_rpc_calls_total{service}                  RPC calls made by commands and the command watcher
//	microbot_rpc_errors_total{service,code}            the failed ones, by error code (408 timeout, 503, ...)
//	microbot_rpc_duration_seconds{service}             how long calls took
//	microbot_input_connected{input}                    1 while the input is connected
//	microbot_input_connects_total{input}               connections opened
//	microbot_input_reconnects_total{input}             connections opened again after the first
//	microbot_input_failures_total{input}               failed opens and broken connections
//	microbot_registry_watch_events_total{action}       registry watch events (create, update, delete)
//	microbot_service_commands                          commands served by command services right now
//	microbot_ha_active{input}                          1 while this instance is the active one for an input one instance at a time serves
//	microbot_ha_takeovers_total{input}                 times this instance became the active one for it (the first time included)
//	microbot_notify_events_total{topic}                events received on watched topics
//	microbot_notify_deliveries_total{topic,outcome}    events in rooms: posted, folded (into a summary), dropped, elsewhere (another instance posted it)
//	microbot_notify_broker_dropped_total               events the broker dropped: the bot fell behind a topic
//	microbot_notify_backlog{state}                     events waiting in rooms (queued) or folded, right now
//	microbot_progress_lines_total{outcome}             progress lines of command services: shown (in a running command's thread), dropped (its command was over, or unknown), undecodable
//
// plus the Go runtime's (go_*) and the process's (process_*).
//
// The command label is the matched command's name, "unknown" for a line
// that matched none (what people type never becomes a label). The service
// label is the service's name when the registry knew it, "unknown" when the
// client found no such service. The topic label is a watched topic. All
// three are capped at [DefaultMaxLabels] distinct values.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	commands   *prometheus.CounterVec
	cmdLatency *prometheus.HistogramVec
	rpcCalls   *prometheus.CounterVec
	rpcErrors  *prometheus.CounterVec
	rpcLatency *prometheus.HistogramVec
	connects   *prometheus.CounterVec
	reconnects *prometheus.CounterVec
	failures   *prometheus.CounterVec
	watch      *prometheus.CounterVec
	takeovers  *prometheus.CounterVec
	events     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	progress   *prometheus.CounterVec

	cmdNames, svcNames, topics *capped

	mu       sync.Mutex
	inputs   []input.Input
	up       map[string]bool // last state told by InputHook, by input
	opened   map[string]int  // connections opened, by input
	notifier NotifierStats   // see WatchNotifier; nil before
}

// MetricsOption configures Metrics.
type MetricsOption func(*metricsOptions)

type metricsOptions struct {
	table     *command.Table
	maxLabels int
	logger    *slog.Logger
}

// WithTable counts the service commands of table in
// microbot_service_commands.
func WithTable(t *command.Table) MetricsOption {
	return func(o *metricsOptions) { o.table = t }
}

// WithMaxLabels sets the cap on distinct command and service label values.
func WithMaxLabels(n int) MetricsOption { return func(o *metricsOptions) { o.maxLabels = n } }

// WithMetricsLogger sets the logger of the per-command debug line (default
// slog.Default()).
func WithMetricsLogger(l *slog.Logger) MetricsOption {
	return func(o *metricsOptions) { o.logger = l }
}

// NewMetrics returns the bot's collectors, registered in a new registry.
func NewMetrics(opts ...MetricsOption) *Metrics {
	o := metricsOptions{maxLabels: DefaultMaxLabels}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: o.logger,
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_commands_total", Help: "Commands run, by command and outcome (ok, error, none, panic).",
		}, []string{"command", "outcome"}),
		cmdLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "microbot_command_duration_seconds", Help: "How long commands took, from the match to the reply.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
		rpcCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_rpc_calls_total", Help: "RPC calls made, by service.",
		}, []string{"service"}),
		rpcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_rpc_errors_total", Help: "RPC calls that failed, by service and error code.",
		}, []string{"service", "code"}),
		rpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "microbot_rpc_duration_seconds", Help: "How long RPC calls took, by service.",
			Buckets: prometheus.DefBuckets,
		}, []string{"service"}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_input_connects_total", Help: "Connections of an input opened.",
		}, []string{"input"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_input_reconnects_total", Help: "Connections of an input opened again after the first.",
		}, []string{"input"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_input_failures_total", Help: "Failed opens and broken connections of an input.",
		}, []string{"input"}),
		watch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_registry_watch_events_total", Help: "Registry watch events seen by the command watcher, by action.",
		}, []string{"action"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_ha_takeovers_total", Help: "Times this instance became the active one for an input one instance at a time serves (the first time included).",
		}, []string{"input"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_notify_events_total", Help: "Events received on watched topics, by topic.",
		}, []string{"topic"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_notify_deliveries_total", Help: "Events in rooms, by topic and outcome (posted, folded into a summary, dropped, elsewhere: posted by another instance).",
		}, []string{"topic", "outcome"}),
		progress: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_progress_lines_total", Help: "Progress lines (messages) of command services, by outcome: shown (in a running command's thread), dropped (for a command that was over, or unknown), undecodable.",
		}, []string{"outcome"}),
		cmdNames: newCapped(o.maxLabels),
		svcNames: newCapped(o.maxLabels),
		topics:   newCapped(o.maxLabels),
		up:       map[string]bool{},
		opened:   map[string]int{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commands, m.cmdLatency, m.rpcCalls, m.rpcErrors, m.rpcLatency,
		m.connects, m.reconnects, m.failures, m.watch, m.takeovers,
		m.events, m.deliveries, m.progress,
		inputCollector{m},
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "microbot_notify_broker_dropped_total", Help: "Events of watched topics the broker dropped because the bot fell behind.",
		}, func() float64 {
			if s := m.notifierStats(); s != nil {
				return float64(s.BrokerStats().Dropped)
			}
			return 0
		}),
		backlogCollector{m},
	)
	if t := o.table; t != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "microbot_service_commands", Help: "Commands served by command services right now.",
		}, func() float64 { return float64(ServiceCommands(t)) }))
	}
	return m
}

// Registry returns the registry holding the collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ServiceCommands returns how many commands of t are served by command
// services.
func ServiceCommands(t *command.Table) int {
	n := 0
	for _, c := range t.Commands() {
		if c.Metadata[command.MetaService] != "" {
			n++
		}
	}
	return n
}

// Outcome classifies the reply of a command: ok, error, or none.
func Outcome(rep *input.Reply) string {
	switch {
	case rep == nil:
		return OutcomeNone
	case rep.Error:
		return OutcomeError
	}
	return OutcomeOK
}

// Middleware returns a bot middleware counting and timing commands. Put it
// first (outermost), so it sees the lines other middlewares answer (a
// refusal counts as an error). It also logs each command at debug level
// with the audit log's field names.
func (m *Metrics) Middleware() bot.Middleware {
	return func(next bot.Handler) bot.Handler {
		return func(ctx context.Context, req *command.Request) (rep *input.Reply) {
			name := Unknown
			if req.Command != nil {
				name = m.cmdNames.label(req.Command.Name)
			}
			start := time.Now()
			outcome := OutcomePanic
			defer func() {
				d := time.Since(start)
				m.commands.WithLabelValues(name, outcome).Inc()
				m.cmdLatency.WithLabelValues(name).Observe(d.Seconds())
				if m.log.Enabled(ctx, slog.LevelDebug) {
					attrs := []slog.Attr{slog.String("command", name), slog.String("outcome", outcome),
						slog.Float64("latency_ms", float64(d.Microseconds())/1000)}
					if ev := req.Event; ev != nil {
						attrs = append(attrs, slog.String("input", ev.Input), slog.String("user_id", ev.UserID),
							slog.String("user_name", ev.UserName), slog.String("room", ev.Room))
					}
					m.log.LogAttrs(ctx, slog.LevelDebug, "command done", attrs...)
				}
			}()
			rep = next(ctx, req)
			outcome = Outcome(rep)
			return rep
		}
	}
}

// WrapCall returns a client wrapper (framework/client.WrapCall) counting and
// timing RPC calls by service.
func (m *Metrics) WrapCall() client.CallWrapper {
	return func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, service, endpoint string, req, rsp any, opts ...client.CallOption) error {
			start := time.Now()
			err := next(ctx, service, endpoint, req, rsp, opts...)
			d := time.Since(start)
			var e *rpcerr.Error
			isErr := errors.As(err, &e)
			label := Unknown
			if !(isErr && e.Code == 404 && e.ID == clientErrorID) {
				label = m.svcNames.label(service)
			}
			m.rpcCalls.WithLabelValues(label).Inc()
			m.rpcLatency.WithLabelValues(label).Observe(d.Seconds())
			if err != nil {
				code := "unknown"
				if isErr {
					code = codeLabel(e.Code)
				}
				m.rpcErrors.WithLabelValues(label, code).Inc()
			}
			return err
		}
	}
}

// codeLabel is an error code as a label: an HTTP status, or "other".
func codeLabel(code int32) string {
	if code < 100 || code > 599 {
		return Other
	}
	return strconv.Itoa(int(code))
}

// InputHook returns the function to give bot.WithInputHook: it counts
// connections, reconnections and failures, and remembers the state of
// inputs that cannot report it themselves.
func (m *Metrics) InputHook() func(name string, up bool, err error) {
	return func(name string, up bool, err error) {
		m.mu.Lock()
		m.up[name] = up
		n := 0
		if up {
			m.opened[name]++
			n = m.opened[name]
		}
		m.mu.Unlock()
		switch {
		case up:
			m.connects.WithLabelValues(name).Inc()
			if n > 1 {
				m.reconnects.WithLabelValues(name).Inc()
			}
		case err != nil:
			m.failures.WithLabelValues(name).Inc()
		}
	}
}

// WatchInputs makes microbot_input_connected report ins: what an
// input.StatusReporter says, else the last state told to InputHook. It
// also starts their counters at zero.
func (m *Metrics) WatchInputs(ins ...input.Input) {
	m.mu.Lock()
	m.inputs = append(m.inputs, ins...)
	m.mu.Unlock()
	for _, in := range ins {
		m.connects.WithLabelValues(in.String())
		m.reconnects.WithLabelValues(in.String())
		m.failures.WithLabelValues(in.String())
		if _, ok := in.(Exclusive); ok {
			m.takeovers.WithLabelValues(in.String())
		}
	}
}

// ActiveHook returns the function to give bot.WithActiveHook: it counts
// the times this instance becomes the active one for an input.
func (m *Metrics) ActiveHook() func(input string, active bool) {
	return func(input string, active bool) {
		if active {
			m.takeovers.WithLabelValues(input).Inc()
		}
	}
}

// connected says whether in is connected.
func (m *Metrics) connected(in input.Input) bool {
	if s, ok := in.(input.StatusReporter); ok {
		return s.Connected()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up[in.String()]
}

// inputCollector reports microbot_input_connected at each scrape.
type inputCollector struct{ m *Metrics }

var (
	inputConnectedDesc = prometheus.NewDesc("microbot_input_connected",
		"1 while the input is connected, 0 otherwise.", []string{"input"}, nil)
	haActiveDesc = prometheus.NewDesc("microbot_ha_active",
		"1 while this instance is the active one for an input one instance at a time serves, 0 while it stands by.", []string{"input"}, nil)
)

func (c inputCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inputConnectedDesc
	ch <- haActiveDesc
}

func (c inputCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	ins := append([]input.Input(nil), c.m.inputs...)
	c.m.mu.Unlock()
	for _, in := range ins {
		v := 0.0
		if c.m.connected(in) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(inputConnectedDesc, prometheus.GaugeValue, v, in.String())
		if ex, ok := in.(Exclusive); ok {
			a := 0.0
			if ex.Active() {
				a = 1
			}
			ch <- prometheus.MustNewConstMetric(haActiveDesc, prometheus.GaugeValue, a, in.String())
		}
	}
}

// WatchHook returns the function to give watch.WithWatchHook (package
// commandsvc/watch): it counts registry watch events by action.
func (m *Metrics) WatchHook() func(*registry.Result) {
	return func(r *registry.Result) {
		action := r.Action
		switch action {
		case registry.Create, registry.Update, registry.Delete:
		default:
			action = Other
		}
		m.watch.WithLabelValues(action).Inc()
	}
}

// ProgressHook returns the function to give watch.WithProgressHook
// (package commandsvc/watch): it counts progress lines by outcome.
func (m *Metrics) ProgressHook() func(outcome string) {
	for _, o := range []string{watch.ProgressShown, watch.ProgressDropped, watch.ProgressUndecodable} {
		m.progress.WithLabelValues(o) // shown at 0 before the first line
	}
	return func(outcome string) {
		switch outcome {
		case watch.ProgressShown, watch.ProgressDropped, watch.ProgressUndecodable:
		default:
			outcome = Other
		}
		m.progress.WithLabelValues(outcome).Inc()
	}
}

// capped hands out label values, at most max distinct ones; past that,
// new values become "other".
type capped struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newCapped(max int) *capped {
	if max <= 0 {
		max = DefaultMaxLabels
	}
	return &capped{max: max, seen: map[string]struct{}{}}
}

func (c *capped) label(v string) string {
	c.mu.RLock()
	_, ok := c.seen[v]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return Other
	}
	c.seen[v] = struct{}{}
	return v
}

// NotifierStats is what the metrics read of the notifier at each scrape
// (package bot/notify's Notifier).
type NotifierStats interface {
	BrokerStats() broker.Stats
	Backlog() (queued, folded int)
}

// WatchNotifier makes microbot_notify_broker_dropped_total and
// microbot_notify_backlog report s.
func (m *Metrics) WatchNotifier(s NotifierStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notifier = s
}

func (m *Metrics) notifierStats() NotifierStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notifier
}

// NotifyHook returns the function to give notify.WithHook: it counts the
// events received ("received") and their outcome in each room.
func (m *Metrics) NotifyHook() func(topic, outcome string) {
	return func(topic, outcome string) {
		label := m.topics.label(topic)
		if outcome == "received" {
			m.events.WithLabelValues(label).Inc()
			return
		}
		m.deliveries.WithLabelValues(label, outcome).Inc()
	}
}

// backlogCollector reports microbot_notify_backlog at each scrape.
type backlogCollector struct{ m *Metrics }

var backlogDesc = prometheus.NewDesc("microbot_notify_backlog",
	"Events waiting in rooms for their turn (queued), and folded for a summary (folded), right now.", []string{"state"}, nil)

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc }

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	queued, folded := 0, 0
	if s := c.m.notifierStats(); s != nil {
		queued, folded = s.Backlog()
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(queued), "queued")
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(folded), "folded")
}
