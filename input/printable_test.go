package input_test

import (
	"testing"

	"github.com/microbot/microbot/input"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, text, line string }{
		{"", "", ""},
		{"plain words, ünïcödé, 日本, emoji 👍🏽 and ZWJ 👩\u200d💻", "plain words, ünïcödé, 日本, emoji 👍🏽 and ZWJ 👩\u200d💻", "plain words, ünïcödé, 日本, emoji 👍🏽 and ZWJ 👩\u200d💻"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab", `two\nlines\tand a tab`},
		{"crlf\r\nends\r", "crlf\nends\\r", `crlf\r\nends\r`},
		{"\x1b[2J\x1b[31mHACKED", `\x1b[2J\x1b[31mHACKED`, `\x1b[2J\x1b[31mHACKED`},
		{"bell\x07 nul\x00 del\x7f", `bell\a nul\x00 del\x7f`, `bell\a nul\x00 del\x7f`},
		{"c1 \u009b2J \u0085", `c1 \u009b2J \u0085`, `c1 \u009b2J \u0085`},
		{"bidi \u202egnp.exe \u2066x\u2069 \u200f", `bidi \u202egnp.exe \u2066x\u2069 \u200f`, `bidi \u202egnp.exe \u2066x\u2069 \u200f`},
		{"sep\u2028line\u2029para", `sep\u2028line\u2029para`, `sep\u2028line\u2029para`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`, `bad \xff\xfe utf8`},
		{`a backslash \x1b stays as typed`, `a backslash \x1b stays as typed`, `a backslash \x1b stays as typed`},
	}
	for _, tt := range tests {
		if got := input.Printable(tt.in); got != tt.text {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.text)
		}
		if got := input.PrintableLine(tt.in); got != tt.line {
			t.Errorf("PrintableLine(%q) = %q, want %q", tt.in, got, tt.line)
		}
	}
}

func BenchmarkPrintable(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"clean-2KB", repeat("go.micro.srv.greeter   127.0.0.1:4000   ok\n", 48)},
		{"escapes", repeat("x\x1b[2Jy\n", 64)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				input.Printable(bc.s)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
