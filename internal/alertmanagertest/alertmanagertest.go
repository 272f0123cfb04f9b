// Package alertmanagertest starts real Prometheus Alertmanagers (the Debian
// package prometheus-alertmanager) for tests: each in a temporary directory
// with its own configuration and storage, its web API on a free loopback
// port, clustering off (no gossip listener, no peers), and one receiver: a
// webhook (send_resolved, a bearer token) at the URL the test gives. Alerts
// are posted to its API as Prometheus would post them; it groups them and
// calls the webhook as it would in production, only with short waits.
//
// The binary is found at $MICROBOT_ALERTMANAGER, on PATH (Debian:
// /usr/bin/prometheus-alertmanager, also looked for as alertmanager). When
// it is missing the test fails under CI=true and is skipped elsewhere
// (internal/testenv); .ci/setup.d/alertmanager.sh installs it.
package alertmanagertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// Server is a running (or stopped) Alertmanager.
type Server struct {
	*testenv.Proc
	// URL is its web address, http://127.0.0.1:port (API under /api/v2).
	URL string
}

// Config is the routing a Server is started with. Zero fields take the
// defaults: alerts grouped by alertname, a group's first notification
// after 100 ms, its changes (new or resolved alerts) after 1 s, and no
// repetition of an unchanged group within the test (1 h).
type Config struct {
	// WebhookURL is where notifications go (required).
	WebhookURL string
	// Token is the bearer token sent with them ("" sends none).
	Token string
	// GroupBy are the labels alerts are grouped by (default alertname).
	GroupBy []string
	// GroupWait, GroupInterval and RepeatInterval are the route's timers.
	GroupWait, GroupInterval, RepeatInterval time.Duration
}

// Find returns the path of the Alertmanager binary, or an error saying
// what is missing.
func Find() (string, error) {
	p, err := testenv.LookPath("prometheus-alertmanager", "MICROBOT_ALERTMANAGER", "apt-get install prometheus-alertmanager")
	if err == nil {
		return p, nil
	}
	if p, err2 := testenv.LookPath("alertmanager", "MICROBOT_ALERTMANAGER", "apt-get install prometheus-alertmanager"); err2 == nil {
		return p, nil
	}
	return "", err
}

// Start writes cfg into a temporary directory and starts Alertmanager with
// it; it is killed when the test ends (its log printed if the test failed).
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	bin, err := Find()
	testenv.Require(tb, "prometheus-alertmanager", err)
	if cfg.WebhookURL == "" {
		tb.Fatal("alertmanagertest: Config.WebhookURL is required")
	}
	if len(cfg.GroupBy) == 0 {
		cfg.GroupBy = []string{"alertname"}
	}
	orDefault := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	cfg.GroupWait = orDefault(cfg.GroupWait, 100*time.Millisecond)
	cfg.GroupInterval = orDefault(cfg.GroupInterval, time.Second)
	cfg.RepeatInterval = orDefault(cfg.RepeatInterval, time.Hour)

	dir := tb.TempDir()
	port := testenv.FreePorts(tb, 1)[0]
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte(configYAML(cfg)), 0o600); err != nil {
		tb.Fatal(err)
	}
	args := []string{
		"--config.file=" + conf,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.external-url=http://" + addr,
		"--cluster.listen-address=", // no HA mode: no gossip listener, no peers
		"--log.level=debug",
	}
	return &Server{URL: "http://" + addr, Proc: testenv.StartProc(tb, testenv.ProcConfig{
		Name: "alertmanager", Dir: dir, Path: bin, Args: args,
		Addrs: []string{addr}, Ready: ready("http://" + addr + "/-/ready"),
		StartTimeout: time.Minute, // the port, then the API
	})}
}

// configYAML renders cfg as Alertmanager's configuration. Strings are
// written as JSON strings, which YAML reads as double-quoted scalars.
func configYAML(cfg Config) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	groupBy := make([]string, len(cfg.GroupBy))
	for i, l := range cfg.GroupBy {
		groupBy[i] = q(l)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# written by alertmanagertest
route:
  receiver: microbot
  group_by: [%s]
  group_wait: %s
  group_interval: %s
  repeat_interval: %s
receivers:
  - name: microbot
    webhook_configs:
      - url: %s
        send_resolved: true
`, strings.Join(groupBy, ", "), model(cfg.GroupWait), model(cfg.GroupInterval), model(cfg.RepeatInterval), q(cfg.WebhookURL))
	if cfg.Token != "" {
		fmt.Fprintf(&b, `        http_config:
          authorization:
            type: Bearer
            credentials: %s
`, q(cfg.Token))
	}
	return b.String()
}

// model writes d as Prometheus durations are written (ms, s, m, h; no
// fractions).
func model(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
}

// ready is ready once url answers 200: the configuration is loaded and
// the API serves.
func ready(url string) func(context.Context, *testenv.Proc) error {
	c := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context, _ *testenv.Proc) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		rsp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, rsp.Body)
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, rsp.Status)
		}
		return nil
	}
}

// Alert is an alert as Prometheus posts it to Alertmanager's API
// (POST /api/v2/alerts).
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Post posts alerts to the API, as Prometheus does: an alert with an EndsAt
// in the past is resolved. Errors (within 10 s) say what the API answered.
func (s *Server) Post(ctx context.Context, alerts ...Alert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanagertest: posting alerts: %w", err)
	}
	defer rsp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(rsp.Body, 4<<10))
	if rsp.StatusCode != http.StatusOK {
		return fmt.Errorf("alertmanagertest: posting alerts: %s: %s", rsp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Fire posts alerts as firing now (StartsAt now, no EndsAt), failing the
// test on error.
func (s *Server) Fire(tb testing.TB, alerts ...Alert) {
	tb.Helper()
	now := time.Now()
	for i := range alerts {
		if alerts[i].StartsAt.IsZero() {
			alerts[i].StartsAt = now
		}
		alerts[i].EndsAt = time.Time{}
	}
	if err := s.Post(context.Background(), alerts...); err != nil {
		tb.Fatal(err)
	}
}

// Resolve posts alerts as resolved a moment ago (EndsAt in the past),
// failing the test on error. Give them the labels (and StartsAt) they were
// fired with.
func (s *Server) Resolve(tb testing.TB, alerts ...Alert) {
	tb.Helper()
	now := time.Now()
	for i := range alerts {
		if alerts[i].StartsAt.IsZero() {
			alerts[i].StartsAt = now.Add(-time.Minute)
		}
		alerts[i].EndsAt = now.Add(-time.Millisecond)
	}
	if err := s.Post(context.Background(), alerts...); err != nil {
		tb.Fatal(err)
	}
}
