package input

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Printable returns text that came from elsewhere (a service's answer, the
// registry) safe to show a person, keeping its lines: every character that
// could act on a terminal or deceive a reader instead of being read is
// written as Go would escape it in a string (\x1b, \u202e, \r, \xff for a
// byte that is not UTF-8), while newlines, tabs and every other character
// stay. Escaped are the C0 and C1 control characters and DEL (terminal
// escape sequences start with them), the bidirectional controls (they
// reorder what is shown), the line and paragraph separators, and invalid
// UTF-8. A carriage return before a newline is dropped.
func Printable(s string) string { return escape(s, true) }

// PrintableLine is [Printable] for a value shown within one line (a name,
// a table cell, an error): newlines and tabs are escaped too, so a value
// cannot add lines or columns.
func PrintableLine(s string) string { return escape(s, false) }

// escape is Printable (lines true) and PrintableLine.
func escape(s string, lines bool) string {
	i := 0
	for i < len(s) {
		if c := s[i]; c >= 0x20 && c < 0x7f || c == '\n' && lines {
			i++ // printable ASCII
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if mustEscape(r, size, lines) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s // the common case: nothing to escape, no allocation
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	var q [16]byte
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case lines && r == '\r' && i+1 < len(s) && s[i+1] == '\n':
			// CRLF line ends: the newline stays.
		case !mustEscape(r, size, lines):
			b.WriteString(s[i : i+size])
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&15])
		default:
			e := strconv.AppendQuoteRuneToASCII(q[:0], r) // '\x1b', '\u202e', '\n'
			b.Write(e[1 : len(e)-1])
		}
		i += size
	}
	return b.String()
}

// mustEscape reports whether rune r (size bytes of the text) must be escaped.
func mustEscape(r rune, size int, lines bool) bool {
	switch {
	case r == utf8.RuneError && size == 1:
		return true // not UTF-8
	case r == '\n' || r == '\t':
		return !lines
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}
