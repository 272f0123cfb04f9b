package xmpp

import (
	"bytes"
	"encoding/xml"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestAddressed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want string
		ok   bool
	}{
		{"microbot: list services", "list services", true},
		{"microbot list services", "list services", true},
		{"microbot, list services", "list services", true},
		{"@microbot list services", "list services", true},
		{"@microbot: list services", "list services", true},
		{"MicroBot: list services", "list services", true},
		{"  microbot:list services  ", "list services", true},
		{"microbot", "", true},
		{"microbot:", "", true},
		{"microbot_2: ping", "ping", true}, // the nick the room gave us
		{"microbots are cool", "microbots are cool", false},
		{"hello microbot: list services", "hello microbot: list services", false},
		{"list services", "list services", false},
		{"micro", "micro", false},
		{"", "", false},
		{"ＭＩＣＲＯＢＯＴ: wide", "ＭＩＣＲＯＢＯＴ: wide", false},
	}
	for _, tt := range tests {
		got, ok := addressed(tt.text, "microbot", "microbot_2")
		if got != tt.want || ok != tt.ok {
			t.Errorf("addressed(%q) = %q, %v; want %q, %v", tt.text, got, ok, tt.want, tt.ok)
		}
	}
	// Unicode nicks fold case rune by rune.
	if got, ok := addressed("ÉTÉ: go", "été"); !ok || got != "go" {
		t.Errorf("unicode nick: %q, %v", got, ok)
	}
}

// TestEscapedLen checks escapedLen against what encoding/xml really writes.
func TestEscapedLen(t *testing.T) {
	t.Parallel()
	alphabet := []string{"a", "<", ">", "&", "\"", "'", "\t", "\n", "\r", "\x00", "\x1b", "é", "✓", "🚀", "\xff", "]]>", "\uFFFD", "\uFFFE"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var b strings.Builder
		for range r.IntN(40) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		s := b.String()
		var out bytes.Buffer
		enc := xml.NewEncoder(&out)
		if err := enc.EncodeElement(s, xml.StartElement{Name: xml.Name{Local: "b"}}); err != nil {
			t.Fatal(err)
		}
		_ = enc.Flush()
		if got, want := escapedLen(s), out.Len()-len("<b></b>"); got != want {
			t.Fatalf("escapedLen(%q) = %d, encoder wrote %d: %s", s, got, want, out.String())
		}
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range 3000 {
		lines = append(lines, strings.Repeat("x<&", i%50)+" line")
	}
	long := strings.Join(lines, "\n")
	tests := []struct {
		name string
		text string
		max  int
	}{
		{"short", "hello\nworld", 100},
		{"many lines", long, 4096},
		{"one huge line", strings.Repeat("é<", 10000), 1000},
		{"huge line among short ones", "a\n" + strings.Repeat("z", 5000) + "\nb\nc", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := split(tt.text, tt.max)
			for i, p := range parts {
				if n := escapedLen(p); n > tt.max {
					t.Errorf("part %d is %d bytes escaped, over %d", i, n, tt.max)
				}
			}
			// Joined again, the parts are the text: at line boundaries with
			// the newline, inside a line without.
			var b strings.Builder
			for i, p := range parts {
				b.WriteString(p)
				if i < len(parts)-1 && strings.HasPrefix(tt.text[b.Len():], "\n") {
					b.WriteString("\n")
				}
			}
			if b.String() != tt.text {
				t.Errorf("parts do not join back into the text (%d parts)", len(parts))
			}
			if escapedLen(tt.text) <= tt.max && len(parts) != 1 {
				t.Errorf("a text under the limit was split into %d parts", len(parts))
			}
		})
	}
	// Line boundaries are preferred: no part of the many-lines case starts
	// or ends inside a line.
	for _, p := range split(long, 4096) {
		if !strings.HasSuffix(p, " line") {
			t.Fatalf("part cut inside a line: …%q", p[max(0, len(p)-20):])
		}
	}
}
