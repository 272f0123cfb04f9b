package alertmanagertest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// webhook is what the receiver got: one JSON payload per call, with its
// Authorization header.
type webhook struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	auth    string
	payload map[string]any
	raw     []byte
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var p map[string]any
	_ = json.Unmarshal(raw, &p)
	w.mu.Lock()
	w.calls = append(w.calls, call{auth: r.Header.Get("Authorization"), payload: p, raw: raw})
	w.mu.Unlock()
}

func (w *webhook) wait(t *testing.T, status string) call {
	t.Helper()
	var got call
	testenv.Eventually(t, 30*time.Second, "a "+status+" notification", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range w.calls {
			if c.payload["status"] == status {
				got = c
				return true
			}
		}
		return false
	})
	return got
}

// TestFireAndResolve: an alert posted to the API reaches the webhook as a
// version 4 payload with the bearer token, firing, then resolved in the
// same group.
func TestFireAndResolve(t *testing.T) {
	hook := &webhook{}
	recv := httptest.NewServer(hook)
	defer recv.Close()
	am := Start(t, Config{WebhookURL: recv.URL + "/hooks/alertmanager", Token: `s3cr"et`})

	a := Alert{Labels: map[string]string{"alertname": "DiskFull", "severity": "critical", "instance": "db1"},
		Annotations: map[string]string{"summary": "disk full on db1"}, GeneratorURL: "http://prometheus.example/graph"}
	am.Fire(t, a)
	fired := hook.wait(t, "firing")
	if fired.auth != `Bearer s3cr"et` {
		t.Errorf("Authorization = %q, want the bearer token", fired.auth)
	}
	if fired.payload["version"] != "4" {
		t.Errorf("version = %v, want 4", fired.payload["version"])
	}
	am.Resolve(t, a)
	resolved := hook.wait(t, "resolved")
	if fired.payload["groupKey"] != resolved.payload["groupKey"] || fired.payload["groupKey"] == "" {
		t.Errorf("group keys %v and %v: want one group", fired.payload["groupKey"], resolved.payload["groupKey"])
	}
	t.Logf("firing payload: %s", fired.raw)
}

func TestModel(t *testing.T) {
	for d, want := range map[time.Duration]string{
		100 * time.Millisecond: "100ms", time.Second: "1s", 90 * time.Second: "90s", time.Hour: "1h", 2 * time.Minute: "2m",
	} {
		if got := model(d); got != want {
			t.Errorf("model(%v) = %q, want %q", d, got, want)
		}
	}
}
