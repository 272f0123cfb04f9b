package ops_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/microbot/microbot/bot/ops"
)

func TestLoggerFormats(t *testing.T) {
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	tests := []struct {
		name, format string
		json         bool
	}{
		{"auto on a buffer is JSON", ops.FormatAuto, true},
		{"json", ops.FormatJSON, true},
		{"text", ops.FormatText, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := ops.NewLogger(&buf, tt.format, slog.LevelInfo)
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("hidden")
			log.Info("hello", "input", "slack", "latency_ms", 12)
			out := buf.String()
			if strings.Contains(out, "hidden") {
				t.Errorf("debug line logged at info level: %s", out)
			}
			var m map[string]any
			isJSON := json.Unmarshal([]byte(out), &m) == nil
			if isJSON != tt.json {
				t.Fatalf("JSON=%v, want %v: %s", isJSON, tt.json, out)
			}
			if isJSON && (m["msg"] != "hello" || m["input"] != "slack" || m["latency_ms"] != 12.0) {
				t.Errorf("fields: %v", m)
			}
		})
	}
	// A pipe is no terminal either.
	if ops.IsTerminal(pipeW) {
		t.Error("a pipe is a terminal")
	}
	// A writer standing in for a terminal's file (the console's, which
	// puts log lines above its prompt) says whether it writes to one.
	for _, tty := range []bool{true, false} {
		w := &standIn{tty: tty}
		log, err := ops.NewLogger(w, ops.FormatAuto, slog.LevelInfo)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello")
		if text := strings.HasPrefix(w.String(), "time="); text != tty {
			t.Errorf("auto format on a writer that is a terminal (%v): %q", tty, w.String())
		}
	}
	if _, err := ops.NewLogger(&bytes.Buffer{}, "yaml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), "want auto, text or json") {
		t.Errorf("format yaml: %v", err)
	}
}

// standIn is a writer that says whether it writes to a terminal.
type standIn struct {
	bytes.Buffer
	tty bool
}

func (w *standIn) IsTerminal() bool { return w.tty }

type token struct{ Value string }

func (t token) String() string { return "token " + t.Value }

type config struct {
	Name  string
	Token string
}

func TestRedaction(t *testing.T) {
	const secret = "xoxb-1-very-secret"
	const other = "hunter2-password"
	const quoted = `quote"d-s3cr<t` // Go and JSON quote it differently
	tests := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"message", func(l *slog.Logger) { l.Info("connecting with " + secret) }},
		{"string value", func(l *slog.Logger) { l.Info("x", "url", "https://h/?t="+secret) }},
		{"error value", func(l *slog.Logger) { l.Info("x", "err", fmt.Errorf("auth %s: %w", secret, errors.New("bad"))) }},
		{"stringer", func(l *slog.Logger) { l.Info("x", "tok", token{secret}) }},
		{"struct", func(l *slog.Logger) { l.Info("x", "cfg", config{Name: "n", Token: other}) }},
		{"map", func(l *slog.Logger) { l.Info("x", "m", map[string]string{"a": secret}) }},
		{"bytes", func(l *slog.Logger) { l.Info("x", "raw", []byte(secret)) }},
		{"group", func(l *slog.Logger) { l.Info("x", slog.Group("g", "inner", secret)) }},
		{"with attrs", func(l *slog.Logger) { l.With("conn", secret).Info("x") }},
		{"with group", func(l *slog.Logger) { l.WithGroup("g").Info("x", "v", secret) }},
		{"secret key, unknown value", func(l *slog.Logger) { l.Info("x", "slack_bot_token", "xoxb-not-in-the-list") }},
		{"password key", func(l *slog.Logger) { l.Info("x", "Password", "not-in-the-list-either") }},
		{"quoted by %q", func(l *slog.Logger) { l.Info("x", "err", fmt.Errorf("password %q refused", quoted)) }},
		{"quoted as JSON", func(l *slog.Logger) { js, _ := json.Marshal(quoted); l.Info("sent " + string(js)) }},
	}
	for _, format := range []string{ops.FormatJSON, ops.FormatText} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				var buf bytes.Buffer
				l, err := ops.NewLogger(&buf, format, slog.LevelDebug, secret, other, "ab", quoted)
				if err != nil {
					t.Fatal(err)
				}
				tt.log(l)
				out := buf.String()
				for _, s := range []string{secret, other, "very-secret", "not-in-the-list", "d-s3cr"} {
					if strings.Contains(out, s) {
						t.Errorf("logged %q: %s", s, out)
					}
				}
				if !strings.Contains(out, ops.Redacted) {
					t.Errorf("no %s in %s", ops.Redacted, out)
				}
			})
		}
	}
	// Short secrets are ignored; empty secret-named values stay empty.
	var buf bytes.Buffer
	l, _ := ops.NewLogger(&buf, ops.FormatJSON, slog.LevelInfo, "ab")
	l.Info("abc", "token", "")
	if out := buf.String(); !strings.Contains(out, `"msg":"abc"`) || !strings.Contains(out, `"token":""`) {
		t.Errorf("short secret or empty token: %s", out)
	}
}
