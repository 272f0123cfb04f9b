package audit_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/internal/testenv"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"web v2 --force", "web v2 --force"},
		{"--password=hunter2 web", "--password=[REDACTED] web"},
		{"--password hunter2 web", "--password [REDACTED] web"},
		{"deploy --db-password='a b c' now", "deploy --db-password=[REDACTED] now"},
		{`login token="x y" user=bob`, `login token=[REDACTED] user=bob`},
		{"API_KEY=abc123,other", "API_KEY=[REDACTED],other"},
		{"secret: s3cr3t", "secret: [REDACTED]"},
		{"Authorization: Bearer abc.def.ghi", "Authorization: [REDACTED] [REDACTED]"},
		{"curl -H 'bearer abc'", "curl -H 'bearer [REDACTED]'"},
		{"fetch https://bob:pa55@example.org/x", "fetch https://bob:[REDACTED]@example.org/x"},
		{"use xoxb-123-456-abc please", "use [REDACTED] please"},
		{"nothing to hide: just words and keys", "nothing to hide: just words and keys"},
		{"secrets: over-redacted rather than leaked", "secrets: [REDACTED] rather than leaked"},
		{`go.micro.srv.auth Auth.Login {"user": "bob", "password": "hunter2"}`,
			`go.micro.srv.auth Auth.Login {"user":"bob","password":"[REDACTED]"}`},
		{`svc M {"a": 1, "nested": {"apiKey": 42, "ok": true, "auth": {"u": "x", "p": ["y"]}}, "list": [{"token": null}]}`,
			`svc M {"a":1,"nested":{"apiKey":"[REDACTED]","ok":true,"auth":"[REDACTED]"},"list":[{"token":"[REDACTED]"}]}`},
		{`svc M {"cmd": "login --password=x", "Secret_Value": false}`,
			`svc M {"cmd":"login --password=[REDACTED]","Secret_Value":"[REDACTED]"}`},
		{`svc M '{"token": "abc"}'`, `svc M '{"token":"[REDACTED]"}'`},
		{`svc M {"a": 1} and {"password": 2} --token t`, `svc M {"a":1} and {"password":"[REDACTED]"} --token [REDACTED]`},
		// JSON that does not parse: the plain-text rules still catch the pairs.
		{`svc M {"user": "bob", "password": "hun ter2"`, `svc M {"user": "bob", "password": [REDACTED]`},
		{`svc M {"password": hunter2}`, `svc M {"password": [REDACTED]}`},
		{`svc M [not json] --token abc`, `svc M [not json] --token [REDACTED]`},
		{"numbers 1.5e3 stay", "numbers 1.5e3 stay"},
		// Issue 15, item 7: a --flag and its value as elements of a JSON
		// array (Command.Exec's args), and a quoted --flag in plain text.
		{`go.micro.bot.deploy Command.Exec {"args": ["deploy", "--password", "hunter2a", "--force"]}`,
			`go.micro.bot.deploy Command.Exec {"args":["deploy","--password","[REDACTED]","--force"]}`},
		{`svc M ["-api-key", 42, "x"]`, `svc M ["-api-key","[REDACTED]","x"]`},
		{`echo "--password" "hunter2e" done`, `echo "--password" [REDACTED] done`},
		{`echo '--token' abc done`, `echo '--token' [REDACTED] done`},
		// A secret found once is redacted wherever it shows.
		{`--password hunter2b and again hunter2b`, `--password [REDACTED] and again [REDACTED]`},
		{`svc M {"auth": {"username": "bob", "pin": "123456"}} pin 123456 username`, `svc M {"auth":"[REDACTED]"} pin [REDACTED] username`},
	}
	for _, tt := range tests {
		if got := audit.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// One Redactor for a record: an error quoting a piece of a secret from the
// arguments keeps none of it (issue 15, item 7: the error of malformed JSON
// quoted its first 12 characters).
func TestRedactorAcrossTexts(t *testing.T) {
	tests := []struct{ args, err, wantArgs, wantErr string }{
		{`go.micro.srv.x A.B {"token": s3cr3tT0kenValue}`,
			`invalid JSON at character 11 ("s3cr3tT0kenV…"): invalid character 's' looking for beginning of value`,
			`go.micro.srv.x A.B {"token": [REDACTED]}`,
			`invalid JSON at character 11 ("[REDACTED]…"): invalid character 's' looking for beginning of value`},
		{`deploy --password "p\"ss w0rd!"`, `bad password "p\"ss w0rd!" for deploy`,
			`deploy --password [REDACTED]`, `bad password "[REDACTED]" for deploy`},
		{`deploy web`, `web is not deployable`, `deploy web`, `web is not deployable`},
		{`deploy --token abc`, `abc: no`, `deploy --token [REDACTED]`, `abc: no`}, // too short to hunt elsewhere
	}
	for _, tt := range tests {
		var r audit.Redactor
		if got := r.Redact(tt.args); got != tt.wantArgs {
			t.Errorf("args %q:\n got %q\nwant %q", tt.args, got, tt.wantArgs)
		}
		if got := r.Redact(tt.err); got != tt.wantErr {
			t.Errorf("error %q:\n got %q\nwant %q", tt.err, got, tt.wantErr)
		}
	}
	// Through the log: the record's error keeps no piece of it either.
	var buf testenv.Buffer
	l := audit.New(&buf)
	if err := l.Write(audit.Record{Input: "shell", UserID: "u", Command: "query", Args: tests[0].args, Error: tests[0].err}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "s3cr3t") {
		t.Errorf("the audit line keeps a piece of the secret: %s", buf.String())
	}
}

func TestHasSecret(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"list services", false},
		{`query go.micro.srv.greeter Say.Hello {"name": "John"}`, false},
		{"nothing to hide: just words and keys", false},
		{"deploy web --password=hunter2", true},
		{"deploy web --token abc", true},
		{`query go.micro.srv.auth Auth.Login {"user": "bob", "password": "hunter2"}`, true},
		{`register service {"name": "x", "metadata": {"api_key": "k"}}`, true},
		{"fetch https://bob:pa55@example.org/x", true},
		{"use xoxb-123-456-abc please", true},
		{"already [REDACTED] here", true},
	}
	for _, tt := range tests {
		if got := audit.HasSecret(tt.in); got != tt.want {
			t.Errorf("HasSecret(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{`{"password": "x"}`, "--token abc", `[{"a": {"key": [1, {"b": 2}]}}]`, "{[", `{"a":`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := audit.Redact(s)
		// A secret under a secret key never survives in valid JSON.
		if strings.Contains(s, "hunter2") && strings.Contains(s, `"password":"hunter2"`) && strings.Contains(out, "hunter2") {
			t.Errorf("Redact(%q) = %q", s, out)
		}
	})
}

func readLines(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	return testenv.JSONLines[map[string]any](t, data)
}

func TestFileLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Path() != path {
		t.Errorf("Path %q", l.Path())
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.FixedZone("X", 3600))
	if err := l.Write(audit.Record{Time: at, Input: "slack", UserID: "U1", UserName: "Ada", Room: "C1", Command: "query",
		Args: `svc M {"password": "hunter2"}`, Target: "svc", Decision: audit.Allowed, Rule: "default", Outcome: audit.Error,
		Error: "failed: token=abc " + strings.Repeat("x", 300), LatencyMS: 12.3456789}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := l.Write(audit.Record{Input: "shell", UserID: fmt.Sprint(i), Command: "ping", Decision: audit.Allowed, Outcome: audit.OK}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(audit.Record{}); err == nil {
		t.Error("write after close")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %s", st.Mode())
	}
	data, _ := os.ReadFile(path)
	lines := readLines(t, data)
	if len(lines) != 51 {
		t.Fatalf("%d lines", len(lines))
	}
	first := lines[0]
	if first["time"] != "2026-03-04T04:06:07.000008Z" || first["input"] != "slack" || first["user_id"] != "U1" || first["user_name"] != "Ada" ||
		first["room"] != "C1" || first["command"] != "query" || first["args"] != `svc M {"password":"[REDACTED]"}` ||
		first["decision"] != "allowed" || first["outcome"] != "error" || first["latency_ms"] != 12.345 || first["target"] != "svc" {
		t.Errorf("first line: %v", first)
	}
	if e := first["error"].(string); !strings.HasPrefix(e, "failed: token=[REDACTED] xxx") || len(e) > audit.MaxErrorLen+len("…") || !strings.HasSuffix(e, "…") {
		t.Errorf("error: %q", e)
	}
	if _, ok := lines[1]["user_name"]; ok {
		t.Errorf("empty fields written: %v", lines[1])
	}
	// Appending, not truncating.
	l2, err := audit.Open(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l2.Write(audit.Record{Command: "again"})
	l2.Close()
	data, _ = os.ReadFile(path)
	if n := len(readLines(t, data)); n != 52 {
		t.Errorf("%d lines after reopening", n)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := audit.Open(dir, nil, nil); err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Errorf("a directory: %v", err)
	}
	if _, err := audit.Open(filepath.Join(dir, "no", "such", "dir", "a.log"), nil, nil); err == nil {
		t.Error("a file in a missing directory")
	}
}

func TestStderrAndLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := audit.Open("-", &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(audit.Record{Command: "ping", Decision: audit.Allowed})
	if got := readLines(t, buf.Bytes()); len(got) != 1 || got[0]["command"] != "ping" {
		t.Errorf("stderr: %q", buf.String())
	}
	if err := l.Reopen(); err != nil || l.Close() != nil {
		t.Error("Reopen/Close of stderr")
	}

	buf.Reset()
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	l, _ = audit.Open("", nil, logger)
	l.Write(audit.Record{Input: "xmpp", UserID: "a@b", Command: "query", Args: "--token x", Decision: audit.Denied, Direct: true})
	got := readLines(t, buf.Bytes())
	if len(got) != 1 || got[0]["msg"] != "audit" || got[0]["level"] != "INFO" || got[0]["user_id"] != "a@b" ||
		got[0]["args"] != "--token [REDACTED]" || got[0]["decision"] != "denied" || got[0]["direct"] != true {
		t.Errorf("logger: %q", buf.String())
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := audit.Open(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write(audit.Record{Command: "one"})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Write(audit.Record{Command: "two"}) // still the moved file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write(audit.Record{Command: "three"})
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if n, m := len(readLines(t, old)), len(readLines(t, cur)); n != 2 || m != 1 {
		t.Errorf("rotated file %d lines, new file %d lines", n, m)
	}
}

// BenchmarkRedact is the cost of redacting typical arguments.
func BenchmarkRedact(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"words", "web v2 --force --region eu-west-1"},
		{"json", `go.micro.srv.auth Auth.Login {"user": "bob", "password": "hunter2", "opts": {"ttl": 30, "scopes": ["a", "b"]}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				audit.Redact(bc.s)
			}
		})
	}
}
