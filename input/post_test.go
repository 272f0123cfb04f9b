package input

import (
	"strings"
	"testing"
	"time"
)

func TestSeverity(t *testing.T) {
	for _, tt := range []struct {
		s            Severity
		name, marker string
	}{
		{SeverityNone, "", ""},
		{SeverityInfo, "info", "[INFO]"},
		{SeverityOK, "ok", "[OK]"},
		{SeverityWarning, "warning", "[WARNING]"},
		{SeverityError, "error", "[ERROR]"},
		{SeverityCritical, "critical", "[CRITICAL]"},
		{Severity(-1), "", ""},
		{Severity(99), "", ""},
	} {
		if tt.s.String() != tt.name || tt.s.Marker() != tt.marker {
			t.Errorf("Severity(%d) = %q %q, want %q %q", int(tt.s), tt.s.String(), tt.s.Marker(), tt.name, tt.marker)
		}
	}
}

func TestPlainText(t *testing.T) {
	when := time.Date(2024, 5, 1, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, tt := range []struct {
		name  string
		post  Post
		fence string
		want  string
	}{
		{"text only", Post{Text: "hello\n"}, "", "hello"},
		{"everything", Post{Title: "Disk\nalmost full", Text: "/var at 91%", Severity: SeverityWarning,
			Fields: []Field{{"host", "db-1"}, {"mount", "/var"}}, Link: "https://grafana/d/1", Source: "prometheus", Time: when}, "",
			"[WARNING] Disk almost full\n/var at 91%\nhost: db-1\nmount: /var\nhttps://grafana/d/1\n— prometheus, 2024-05-01 12:00:00 UTC"},
		{"code fenced", Post{Title: "event on x", Text: `{"a": 1}`, Format: Code}, "```", "event on x\n```\n{\"a\": 1}\n```"},
		{"code unfenced", Post{Text: `{"a": 1}`, Format: Code}, "", `{"a": 1}`},
		{"plain text never fenced", Post{Text: "a"}, "```", "a"},
		{"marker alone", Post{Severity: SeverityCritical}, "", "[CRITICAL]"},
		{"time alone", Post{Text: "x", Time: when}, "", "x\n— 2024-05-01 12:00:00 UTC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlainText(&tt.post, tt.fence); got != tt.want {
				t.Errorf("PlainText = %q, want %q", got, tt.want)
			}
			if head, _, _ := PlainParts(&tt.post); strings.Contains(head, "\n") {
				t.Errorf("head %q has a line break", head)
			}
		})
	}
}
