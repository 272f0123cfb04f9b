package xmpp

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBodySize is the most bytes one reply message's body takes on the wire,
// once XML-escaped: a quarter of prosody's default 256 KiB c2s stanza limit,
// which leaves room for the envelope and for servers with smaller limits.
// Longer replies are split at line boundaries into several messages.
const MaxBodySize = 64 << 10

// addressed reports whether text starts with one of the bot's nicks, as in
// "microbot: list services", "microbot, list services",
// "microbot list services" or "@microbot list services" (case-insensitive),
// and returns the text without it. A nick must be followed by the end of
// the text, a space, ':' or ','; "microbots are cool" is not addressed.
func addressed(text string, nicks ...string) (rest string, ok bool) {
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	t = strings.TrimPrefix(t, "@")
	for _, nick := range nicks {
		if nick == "" {
			continue
		}
		after, ok := cutPrefixFold(t, nick)
		if !ok {
			continue
		}
		r, _ := utf8.DecodeRuneInString(after)
		if after != "" && r != ':' && r != ',' && !unicode.IsSpace(r) {
			continue
		}
		after = strings.TrimLeft(after, ":,")
		return strings.TrimSpace(after), true
	}
	return strings.TrimSpace(text), false
}

// cutPrefixFold is strings.CutPrefix ignoring case (Unicode simple folding,
// rune by rune, so the byte lengths of the two sides may differ).
func cutPrefixFold(s, prefix string) (string, bool) {
	for prefix != "" {
		if s == "" {
			return "", false
		}
		pr, pn := utf8.DecodeRuneInString(prefix)
		sr, sn := utf8.DecodeRuneInString(s)
		if pr != sr && !strings.EqualFold(string(pr), string(sr)) {
			return "", false
		}
		prefix, s = prefix[pn:], s[sn:]
	}
	return s, true
}

// escapedLen is the size of s once escaped by encoding/xml, which writes
// &lt; &gt; &amp; &#34; &#39; &#x9; &#xA; &#xD; and replaces characters XML
// cannot carry with U+FFFD.
func escapedLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		i += w
		switch {
		case r == '<' || r == '>':
			n += 4
		case r == '&' || r == '"' || r == '\'' || r == '\t' || r == '\n' || r == '\r':
			n += 5
		case r == utf8.RuneError && w == 1, !inXMLRange(r):
			n += 3
		default:
			n += w
		}
	}
	return n
}

// inXMLRange reports whether XML 1.0 can carry r.
func inXMLRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// split cuts text into parts whose escaped size is at most max, at line
// boundaries where it can, and inside a line (at a rune boundary) only when
// the line alone is too long.
func split(text string, max int) []string {
	if escapedLen(text) <= max {
		return []string{text}
	}
	var parts []string
	var cur strings.Builder
	curLen := 0
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, strings.TrimSuffix(cur.String(), "\n"))
			cur.Reset()
			curLen = 0
		}
	}
	for line := range strings.SplitAfterSeq(text, "\n") {
		l := escapedLen(line)
		if curLen+l > max {
			flush()
		}
		for l > max { // one line longer than a part: cut it
			cut, cutLen := 0, 0
			for cut < len(line) {
				r, w := utf8.DecodeRuneInString(line[cut:])
				rl := escapedLen(string(r))
				if r == utf8.RuneError && w == 1 {
					rl = 3
				}
				if cutLen+rl > max {
					break
				}
				cut, cutLen = cut+w, cutLen+rl
			}
			parts = append(parts, line[:cut])
			line, l = line[cut:], l-cutLen
			if line == "\n" { // the cut part ended the line
				line, l = "", 0
			}
		}
		cur.WriteString(line)
		curLen += l
	}
	flush()
	return parts
}

// codeFence is the XEP-0393 (message styling) preformatted block marker:
// clients that style messages show a Code reply in monospace, others show
// the fences, which are still readable.
const codeFence = "```"
