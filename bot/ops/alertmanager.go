package ops

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	pb "github.com/microbot/microbot/proto/bot"
)

// PathAlertmanager is where the Server receives Prometheus Alertmanager's
// webhook, when it has an [AlertmanagerHook].
const PathAlertmanager = "/hooks/alertmanager"

// Defaults of an AlertmanagerHook.
const (
	// DefaultAlertTopic is the topic alerts are published on.
	DefaultAlertTopic = "alerts"
	// DefaultMaxAlertBody bounds a webhook's body (Alertmanager sends every
	// alert of a group in one; max_alerts in its webhook_config bounds
	// them there).
	DefaultMaxAlertBody = 1 << 20
	// DefaultPublishTimeout bounds publishing one notification.
	DefaultPublishTimeout = 10 * time.Second
)

// Bounds of a notification made from a webhook.
const (
	maxAlertLines  = 10  // alerts listed in the text
	maxAlertField  = 200 // bytes of a field's value, a line of text
	maxAlertFields = 12
)

// Publisher publishes a message on a topic; the bot's framework client
// (*client.Client) is one.
type Publisher interface {
	Publish(ctx context.Context, topic string, msg any, opts ...client.CallOption) error
}

// AlertmanagerHook receives Prometheus Alertmanager's webhook (the JSON
// payload of version 4) and publishes each call as a proto/bot
// Notification on a topic (DefaultAlertTopic, or WithAlertTopic), as
// application/protobuf with the header Micro-Message-Type; rooms that
// watch the topic, or the routes, show it. The notification is:
//
//	title      "FIRING: <alertname>", "FIRING (3): …", "RESOLVED: …" (the
//	           group's alertname, else its group labels)
//	severity   RESOLVED -> OK; else the gravest "severity" label of the
//	           firing alerts: critical|page|fatal|emergency -> CRITICAL,
//	           error|high|major -> ERROR, warning|warn|medium|minor ->
//	           WARNING, info|low|notice|none -> INFO; none known -> WARNING
//	text       one alert: its summary and description annotations; several:
//	           one line each (status, summary or the labels that set it
//	           apart), at most 10, then how many more
//	fields     the labels the alerts share (but alertname), then the
//	           annotations they share (but summary and description)
//	link       the generatorURL of the first firing alert (else the first
//	           alert's), else Alertmanager's externalURL; http(s) only
//	thread key "alertmanager-" and a hash of the group key: firing and
//	           resolved of one group go to one thread
//	source     "alertmanager"
//	time       when the first alert started (firing) or the last ended
//
// Every request must carry the bearer token (Authorization: Bearer …),
// compared in constant time; a missing or wrong one is answered 401 and
// logged without the token. The body is bounded (WithMaxAlertBody, 413
// past it); a body that is not a version 4 payload is answered 400 with
// what is wrong; a notification that cannot be published is answered 503,
// so Alertmanager tries again. Only POST is served.
type AlertmanagerHook struct {
	token   [sha256.Size]byte
	pub     Publisher
	opts    alertOptions
	warned  atomic.Int64 // unix ns of the last warning about a refused request
	outcome *prometheus.CounterVec
}

type alertOptions struct {
	topic   string
	maxBody int64
	timeout time.Duration
	logger  *slog.Logger
	metrics prometheus.Registerer
}

// AlertmanagerOption configures an AlertmanagerHook.
type AlertmanagerOption func(*alertOptions)

// WithAlertTopic sets the topic alerts are published on.
func WithAlertTopic(t string) AlertmanagerOption { return func(o *alertOptions) { o.topic = t } }

// WithMaxAlertBody bounds a webhook's body, in bytes.
func WithMaxAlertBody(n int64) AlertmanagerOption { return func(o *alertOptions) { o.maxBody = n } }

// WithPublishTimeout bounds publishing one notification.
func WithPublishTimeout(d time.Duration) AlertmanagerOption {
	return func(o *alertOptions) { o.timeout = d }
}

// WithAlertLogger sets the logger (default slog.Default()).
func WithAlertLogger(l *slog.Logger) AlertmanagerOption {
	return func(o *alertOptions) { o.logger = l }
}

// WithAlertMetrics registers the hook's counter in reg (the bot's
// Metrics.Registry()):
//
//	microbot_alertmanager_requests_total{outcome}   webhook calls: published,
//	    unauthorized, too_large, bad_request, publish_failed
func WithAlertMetrics(reg prometheus.Registerer) AlertmanagerOption {
	return func(o *alertOptions) { o.metrics = reg }
}

// Outcomes of a webhook call (the outcome label).
const (
	AlertPublished     = "published"
	AlertUnauthorized  = "unauthorized"
	AlertTooLarge      = "too_large"
	AlertBadRequest    = "bad_request"
	AlertPublishFailed = "publish_failed"
)

// NewAlertmanagerHook returns a hook that accepts requests bearing token
// and publishes through pub. An empty token is refused: without one the
// endpoint stays off (do not build the hook).
func NewAlertmanagerHook(token string, pub Publisher, opts ...AlertmanagerOption) (*AlertmanagerHook, error) {
	o := alertOptions{topic: DefaultAlertTopic, maxBody: DefaultMaxAlertBody, timeout: DefaultPublishTimeout}
	for _, f := range opts {
		f(&o)
	}
	switch {
	case token == "":
		return nil, errors.New("alertmanager hook: no token: the endpoint would accept anyone")
	case pub == nil:
		return nil, errors.New("alertmanager hook: no publisher")
	case o.maxBody < 1:
		return nil, fmt.Errorf("alertmanager hook: max body %d: want at least 1 byte", o.maxBody)
	case o.timeout <= 0:
		return nil, fmt.Errorf("alertmanager hook: publish timeout %v: want a positive duration", o.timeout)
	}
	if err := broker.ValidateTopic(o.topic); err != nil {
		return nil, fmt.Errorf("alertmanager hook: %w", err)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	h := &AlertmanagerHook{token: sha256.Sum256([]byte(token)), pub: pub, opts: o,
		outcome: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microbot_alertmanager_requests_total",
			Help: "Calls of the Alertmanager webhook, by outcome (published, unauthorized, too_large, bad_request, publish_failed).",
		}, []string{"outcome"})}
	for _, oc := range []string{AlertPublished, AlertUnauthorized, AlertTooLarge, AlertBadRequest, AlertPublishFailed} {
		h.outcome.WithLabelValues(oc)
	}
	if o.metrics != nil {
		if err := o.metrics.Register(h.outcome); err != nil {
			return nil, fmt.Errorf("alertmanager hook: metrics: %w", err)
		}
	}
	return h, nil
}

// Topic returns the topic alerts are published on.
func (h *AlertmanagerHook) Topic() string { return h.opts.topic }

// ServeHTTP receives one webhook call.
func (h *AlertmanagerHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		plain(w, http.StatusMethodNotAllowed, "POST Alertmanager's webhook here\n")
		return
	}
	if !h.authorized(r) {
		h.refuse(w, r, http.StatusUnauthorized, AlertUnauthorized, "a bearer token is required (Authorization: Bearer …; Alertmanager: http_config.authorization)")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			h.refuse(w, r, http.StatusUnsupportedMediaType, AlertBadRequest, fmt.Sprintf("content type %q: want application/json", ct))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.refuse(w, r, http.StatusRequestEntityTooLarge, AlertTooLarge,
				fmt.Sprintf("body over %d bytes (lower max_alerts in Alertmanager's webhook_config)", h.opts.maxBody))
			return
		}
		h.refuse(w, r, http.StatusBadRequest, AlertBadRequest, "reading the body: "+err.Error())
		return
	}
	var p alertPayload
	if err := decodePayload(body, &p); err != nil {
		h.refuse(w, r, http.StatusBadRequest, AlertBadRequest, err.Error())
		return
	}
	n := p.notification()
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.timeout)
	defer cancel()
	ctx = metadata.MergeContext(ctx, metadata.Metadata{pb.HeaderMessageType: pb.NotificationType})
	if err := h.pub.Publish(ctx, h.opts.topic, n, client.WithContentType("application/protobuf")); err != nil {
		h.outcome.WithLabelValues(AlertPublishFailed).Inc()
		h.opts.logger.Warn("alertmanager webhook: publishing failed; Alertmanager will try again", "topic", h.opts.topic, "group", p.GroupKey, "err", err)
		plain(w, http.StatusServiceUnavailable, "publishing the notification failed: "+err.Error()+"\n")
		return
	}
	h.outcome.WithLabelValues(AlertPublished).Inc()
	h.opts.logger.Info("alertmanager webhook: published", "topic", h.opts.topic, "status", p.Status, "alerts", len(p.Alerts), "thread", n.GetThreadKey())
	plain(w, http.StatusOK, "ok\n")
}

// authorized reports whether r bears the token, compared in constant time
// (as hashes, so not even its length shows).
func (h *AlertmanagerHook) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1
}

// refuse answers a refused request, counts it, and logs it at most once
// every 10 s (a sender that keeps trying must not flood the log); the
// token, right or wrong, is never logged.
func (h *AlertmanagerHook) refuse(w http.ResponseWriter, r *http.Request, code int, outcome, why string) {
	h.outcome.WithLabelValues(outcome).Inc()
	now := time.Now().UnixNano()
	if last := h.warned.Load(); now-last > int64(10*time.Second) && h.warned.CompareAndSwap(last, now) {
		h.opts.logger.Warn("alertmanager webhook: request refused", "status", code, "why", why, "remote", r.RemoteAddr)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="microbot"`)
	}
	plain(w, code, why+"\n")
}

// alertPayload is the webhook's JSON body (version 4).
type alertPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []alert           `json:"alerts"`
}

type alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Alert statuses.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// decodePayload decodes and checks a webhook body.
func decodePayload(body []byte, p *alertPayload) error {
	if err := json.Unmarshal(body, p); err != nil {
		return fmt.Errorf("not Alertmanager's webhook JSON: %w", err)
	}
	switch {
	case p.Version != "4":
		return fmt.Errorf("payload version %q: want 4 (Alertmanager 0.x's webhook)", p.Version)
	case p.Status != statusFiring && p.Status != statusResolved:
		return fmt.Errorf("status %q: want firing or resolved", p.Status)
	case p.GroupKey == "":
		return errors.New("no groupKey")
	case len(p.Alerts) == 0:
		return errors.New("no alerts")
	}
	for i, a := range p.Alerts {
		if a.Status != statusFiring && a.Status != statusResolved {
			return fmt.Errorf("alert %d: status %q: want firing or resolved", i, a.Status)
		}
	}
	return nil
}
