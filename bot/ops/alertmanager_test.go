package ops_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/internal/alertmanagertest"
	"github.com/microbot/microbot/internal/testenv"
	pb "github.com/microbot/microbot/proto/bot"
)

const hookToken = "am-T0ken-for-the-tests-8812"

// published is one Publish call as a publisher saw it.
type published struct {
	topic, contentType, messageType string
	n                               *pb.Notification
}

// recorder is a Publisher that keeps what it is given (and fails while
// err is set).
type recorder struct {
	mu   sync.Mutex
	got  []published
	err  error
	seen chan struct{}
}

func newRecorder() *recorder { return &recorder{seen: make(chan struct{}, 100)} }

func (r *recorder) Publish(ctx context.Context, topic string, msg any, opts ...client.CallOption) error {
	var co client.CallOptions
	for _, o := range opts {
		o(&co)
	}
	md, _ := metadata.FromContext(ctx)
	mt, _ := md.Get(pb.HeaderMessageType)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, published{topic: topic, contentType: co.ContentType, messageType: mt, n: proto.Clone(msg.(*pb.Notification)).(*pb.Notification)})
	r.seen <- struct{}{}
	return nil
}

func (r *recorder) all() []published {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]published(nil), r.got...)
}

func newHook(t *testing.T, pub ops.Publisher, opts ...ops.AlertmanagerOption) (*ops.AlertmanagerHook, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := ops.NewAlertmanagerHook(hookToken, pub, append([]ops.AlertmanagerOption{
		ops.WithAlertLogger(slog.New(slog.DiscardHandler)), ops.WithAlertMetrics(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

func post(t *testing.T, h http.Handler, auth, contentType, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, ops.PathAlertmanager, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// payload is a version 4 webhook body with the given status and alerts
// (JSON objects).
func payload(status string, alerts ...string) string {
	return fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"DiskFull\"}","status":%q,"receiver":"microbot",
		"groupLabels":{"alertname":"DiskFull"},"commonLabels":{"alertname":"DiskFull","severity":"critical","team":"db"},
		"commonAnnotations":{"runbook_url":"https://runbooks.example/disk"},"externalURL":"http://am.example:9093",
		"alerts":[%s]}`, status, strings.Join(alerts, ","))
}

const (
	alertDB1 = `{"status":"firing","labels":{"alertname":"DiskFull","severity":"critical","team":"db","instance":"db1"},
		"annotations":{"summary":"disk full on db1","description":"/var is 99% full"},"startsAt":"2026-01-02T03:04:05Z",
		"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example/graph?g0.expr=disk","fingerprint":"a1"}`
	alertDB2 = `{"status":"firing","labels":{"alertname":"DiskFull","severity":"page","team":"db","instance":"db2"},
		"annotations":{},"startsAt":"2026-01-02T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"javascript:alert(1)","fingerprint":"a2"}`
	alertDB1Resolved = `{"status":"resolved","labels":{"alertname":"DiskFull","severity":"critical","team":"db","instance":"db1"},
		"annotations":{"summary":"disk full on db1"},"startsAt":"2026-01-02T03:04:05Z","endsAt":"2026-01-02T04:00:00Z",
		"generatorURL":"http://prometheus.example/graph?g0.expr=disk","fingerprint":"a1"}`
)

// TestAlertmanagerNotification: what a webhook call becomes.
func TestAlertmanagerNotification(t *testing.T) {
	thread := ops.AlertThreadKey(`{}:{alertname="DiskFull"}`)
	tests := []struct {
		name, body string
		want       string // the Notification, in the proto3 JSON mapping
	}{
		{"one firing", payload("firing", alertDB1), `{"title":"FIRING: DiskFull","text":"disk full on db1\n/var is 99% full","severity":"CRITICAL",
			"fields":[{"name":"severity","value":"critical"},{"name":"team","value":"db"},{"name":"runbook_url","value":"https://runbooks.example/disk"}],
			"link":"http://prometheus.example/graph?g0.expr=disk","threadKey":"` + thread + `","source":"alertmanager","time":"2026-01-02T03:04:05Z"}`},
		{"two firing", payload("firing", alertDB2, alertDB1), `{"title":"FIRING (2): DiskFull","text":"firing: instance=db2 severity=page\nfiring: disk full on db1","severity":"CRITICAL",
			"fields":[{"name":"severity","value":"critical"},{"name":"team","value":"db"},{"name":"runbook_url","value":"https://runbooks.example/disk"}],
			"link":"http://prometheus.example/graph?g0.expr=disk","threadKey":"` + thread + `","source":"alertmanager","time":"2026-01-02T03:00:00Z"}`},
		{"resolved", payload("resolved", alertDB1Resolved), `{"title":"RESOLVED: DiskFull","text":"disk full on db1","severity":"OK",
			"fields":[{"name":"severity","value":"critical"},{"name":"team","value":"db"},{"name":"runbook_url","value":"https://runbooks.example/disk"}],
			"link":"http://prometheus.example/graph?g0.expr=disk","threadKey":"` + thread + `","source":"alertmanager","time":"2026-01-02T04:00:00Z"}`},
		{"no severity, no link but Alertmanager's", `{"version":"4","groupKey":"g","status":"firing","groupLabels":{"job":"api"},"externalURL":"http://am:9093",
			"alerts":[{"status":"firing","labels":{"job":"api","alertname":"Down"},"generatorURL":"ftp://x"}],"truncatedAlerts":3}`,
			`{"title":"FIRING: job=api","text":"(3 more alerts that Alertmanager did not send: max_alerts)","severity":"WARNING","link":"http://am:9093",
			"threadKey":"` + ops.AlertThreadKey("g") + `","source":"alertmanager"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := newRecorder()
			h, _ := newHook(t, pub)
			if code, body := post(t, h, "Bearer "+hookToken, "application/json", tt.body); code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			got := pub.all()
			if len(got) != 1 || got[0].topic != ops.DefaultAlertTopic || got[0].contentType != "application/protobuf" || got[0].messageType != pb.NotificationType {
				t.Fatalf("published %+v: want one Notification on %s, as protobuf, typed", got, ops.DefaultAlertTopic)
			}
			var want pb.Notification
			if err := protojson.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got[0].n, &want) {
				t.Errorf("notification\n got %v\nwant %v", protojson.Format(got[0].n), protojson.Format(&want))
			}
		})
	}
}

// TestAlertmanagerManyAlerts: a large group lists ten alerts and counts
// the rest.
func TestAlertmanagerManyAlerts(t *testing.T) {
	var alerts []string
	for i := range 25 {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"DiskFull","instance":"db%d"}}`, i))
	}
	pub := newRecorder()
	h, _ := newHook(t, pub)
	if code, body := post(t, h, "Bearer "+hookToken, "", payload("firing", alerts...)); code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	text := pub.all()[0].n.GetText()
	if lines := strings.Split(text, "\n"); len(lines) != 11 || lines[10] != "… and 15 more" || lines[0] != "firing: instance=db0" {
		t.Errorf("text %q", text)
	}
}

// TestAlertmanagerRefuses: a request without the token, with a wrong one,
// too large, not JSON or not a version 4 payload changes nothing and gets
// a status saying why; one that cannot be published gets 503 (Alertmanager
// tries again). Each is counted.
func TestAlertmanagerRefuses(t *testing.T) {
	pub := newRecorder()
	h, reg := newHook(t, pub, ops.WithMaxAlertBody(4096))
	good := payload("firing", alertDB1)
	tests := []struct {
		name, auth, contentType, body string
		code                          int
		says                          string
	}{
		{"no token", "", "application/json", good, http.StatusUnauthorized, "bearer token is required"},
		{"wrong token", "Bearer " + hookToken + "x", "application/json", good, http.StatusUnauthorized, "bearer token is required"},
		{"a prefix of the token", "Bearer am-T0ken", "application/json", good, http.StatusUnauthorized, "bearer token is required"},
		{"basic", "Basic " + hookToken, "application/json", good, http.StatusUnauthorized, "bearer token is required"},
		{"too large", "Bearer " + hookToken, "application/json", payload("firing", alertDB1+strings.Repeat(" ", 5000)), http.StatusRequestEntityTooLarge, "body over 4096 bytes"},
		{"not JSON", "Bearer " + hookToken, "application/json", "{", http.StatusBadRequest, "not Alertmanager's webhook JSON"},
		{"form", "bearer " + hookToken, "application/x-www-form-urlencoded", good, http.StatusUnsupportedMediaType, "want application/json"},
		{"version 3", "Bearer " + hookToken, "", strings.Replace(good, `"version":"4"`, `"version":"3"`, 1), http.StatusBadRequest, `payload version "3": want 4`},
		{"no alerts", "Bearer " + hookToken, "", payload("firing"), http.StatusBadRequest, "no alerts"},
		{"bad status", "Bearer " + hookToken, "", payload("burning", alertDB1), http.StatusBadRequest, `status "burning"`},
	}
	for _, tt := range tests {
		code, body := post(t, h, tt.auth, tt.contentType, tt.body)
		if code != tt.code || !strings.Contains(body, tt.says) || strings.Contains(body, hookToken) {
			t.Errorf("%s: %d %q, want %d saying %q (and never the token)", tt.name, code, body, tt.code, tt.says)
		}
	}
	if got := pub.all(); len(got) != 0 {
		t.Fatalf("refused requests published %+v", got)
	}
	pub.mu.Lock()
	pub.err = errors.New("broker unavailable")
	pub.mu.Unlock()
	if code, body := post(t, h, "Bearer "+hookToken, "", good); code != http.StatusServiceUnavailable || !strings.Contains(body, "broker unavailable") {
		t.Errorf("publish failure: %d %q, want 503", code, body)
	}
	for outcome, want := range map[string]float64{ops.AlertUnauthorized: 4, ops.AlertTooLarge: 1, ops.AlertBadRequest: 5, ops.AlertPublishFailed: 1, ops.AlertPublished: 0} {
		if got := counter(t, reg, outcome); got != want {
			t.Errorf("outcome %s counted %v, want %v", outcome, got, want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, ops.PathAlertmanager, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", rec.Code)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "microbot_alertmanager_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

func TestNewAlertmanagerHook(t *testing.T) {
	pub := newRecorder()
	for _, tt := range []struct {
		token string
		opts  []ops.AlertmanagerOption
		err   string
	}{
		{"", nil, "no token"},
		{"t0ken", []ops.AlertmanagerOption{ops.WithAlertTopic("alerts.#")}, "wildcard"},
		{"t0ken", []ops.AlertmanagerOption{ops.WithMaxAlertBody(0)}, "max body 0"},
	} {
		if _, err := ops.NewAlertmanagerHook(tt.token, pub, tt.opts...); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("NewAlertmanagerHook(%q) = %v, want %q", tt.token, err, tt.err)
		}
	}
}

// TestAlertmanagerReal: a real Alertmanager calls the hook on the ops
// server: an alert posted to its API is published firing, then resolved,
// in one thread; an Alertmanager with the wrong token gets nothing
// published.
func TestAlertmanagerReal(t *testing.T) {
	pub := newRecorder()
	h, reg := newHook(t, pub, ops.WithAlertTopic("alerts.prod"))
	srv := ops.NewServer(ops.WithAlertmanager(h), ops.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	url := "http://" + srv.Addr() + ops.PathAlertmanager

	am := alertmanagertest.Start(t, alertmanagertest.Config{WebhookURL: url, Token: hookToken})
	a := alertmanagertest.Alert{Labels: map[string]string{"alertname": "HighLatency", "severity": "warning", "service": "api"},
		Annotations: map[string]string{"summary": "p99 over 2s"}, GeneratorURL: "http://prometheus.example/graph?g0.expr=latency"}
	am.Fire(t, a)
	testenv.Eventually(t, 30*time.Second, "the firing notification", func() bool { return len(pub.all()) >= 1 })
	am.Resolve(t, a)
	testenv.Eventually(t, 30*time.Second, "the resolved notification", func() bool { return len(pub.all()) >= 2 })
	got := pub.all()
	fired, resolved := got[0].n, got[1].n
	if got[0].topic != "alerts.prod" || fired.GetTitle() != "FIRING: HighLatency" || fired.GetSeverity() != pb.Notification_WARNING ||
		fired.GetText() != "p99 over 2s" || fired.GetLink() != a.GeneratorURL {
		t.Errorf("firing: %s on %s", protojson.Format(fired), got[0].topic)
	}
	if resolved.GetTitle() != "RESOLVED: HighLatency" || resolved.GetSeverity() != pb.Notification_OK {
		t.Errorf("resolved: %s", protojson.Format(resolved))
	}
	if fired.GetThreadKey() == "" || fired.GetThreadKey() != resolved.GetThreadKey() {
		t.Errorf("thread keys %q and %q: want one thread", fired.GetThreadKey(), resolved.GetThreadKey())
	}

	wrong := alertmanagertest.Start(t, alertmanagertest.Config{WebhookURL: url, Token: "not-" + hookToken})
	wrong.Fire(t, alertmanagertest.Alert{Labels: map[string]string{"alertname": "Intruder"}})
	testenv.Eventually(t, 30*time.Second, "the refused call", func() bool { return counter(t, reg, ops.AlertUnauthorized) >= 1 })
	if n := len(pub.all()); n != 2 {
		t.Errorf("%d notifications published, want the 2 of the right Alertmanager", n)
	}
}
