// Package envelope is go-micro's broker message on the wire: the JSON that
// go-micro's default broker codec (broker/codec/json, encoding/json) makes
// of its broker.Message,
//
//	{"Header":{"Content-Type":"application/json",...},"Body":"<base64>"}
//
// go-micro v1's nats broker sends it as the NATS payload, and go-plugins'
// mqtt broker as the MQTT payload; go-micro's subscribers drop, without a
// word, any payload that does not unmarshal into it.
//
// [Decode] is strict, so that an event of the application's own that
// happens to be a JSON object is never taken for an envelope: a payload is
// go-micro's message when it is a JSON object (spaces around it allowed)
// with exactly the two keys "Header" and "Body", each once, spelt as go-micro writes
// them (encoding/json would also take "header" or "BODY", but no go-micro
// publisher sends those, and an application's {"header": ..., "body": ...}
// is its own), Header an object of strings or null, and Body a base64
// string (standard encoding, padded, as encoding/json writes []byte) or
// null. Anything else, including an envelope that is malformed (a number
// among the headers, a Body that is not base64, a third key), is not one:
// the brokers deliver such a payload whole, as the body of a message
// without headers, as they deliver any other payload.
//
// The check is cheap for what is not an envelope: the shape is checked
// first, without allocating, and gives up at the first byte that does not
// fit (a payload whose first byte is not '{', an object whose first key is
// not "Header" or "Body"); only a payload of the envelope's shape is
// decoded.
//
// Both directions are written by hand rather than left to encoding/json
// (reflection, a sorted copy of the keys, a string for every token): on
// the nats broker, go-micro's format is the default, and encoding/json
// took most of a message's cost. They give what encoding/json gives, byte
// for byte ([AppendEncode] is json.Marshal of [Message], HTML-safe
// escaping included) and value for value ([Decode] takes what
// json.Unmarshal into a Message takes, with the same strings: escapes
// undone, invalid UTF-8 replaced by U+FFFD, Body's base64 decoded as
// encoding/json decodes a []byte); the fuzz tests compare them with
// encoding/json.
package envelope

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Message is go-micro's broker.Message, whose JSON is the envelope.
type Message struct {
	Header map[string]string
	Body   []byte
}

// Encode returns the envelope of header and body, byte for byte what
// go-micro's JSON codec (json.Marshal of a [Message]) writes: keys sorted,
// strings escaped as encoding/json escapes them, a nil header
// "Header":null, a nil body "Body":null. The slice is allocated once, at
// its final length.
func Encode(header map[string]string, body []byte) []byte {
	return AppendEncode(nil, header, body)
}

// AppendEncode appends the envelope of header and body (see [Encode]) to
// dst and returns the extended slice; dst grows at most once.
func AppendEncode(dst []byte, header map[string]string, body []byte) []byte {
	var small [16]pair // go-micro's client sends two or three headers
	pairs := sortedPairs(small[:0], header)
	dst = slices.Grow(dst, encodedLen(header == nil, pairs, body))
	dst = append(dst, `{"Header":`...)
	if header == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '{')
		for i, p := range pairs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, p.k, p.kq)
			dst = append(dst, ':')
			dst = appendQuoted(dst, p.v, p.vq)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"Body":`...)
	if body == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, body)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// pair is a header, with the lengths of its key and value quoted.
type pair struct {
	k, v   string
	kq, vq int
}

// sortedPairs appends the headers to dst sorted by key, as encoding/json
// sorts a map's keys (byte-wise).
func sortedPairs(dst []pair, header map[string]string) []pair {
	for k, v := range header {
		dst = append(dst, pair{k, v, quotedLen(k), quotedLen(v)})
	}
	slices.SortFunc(dst, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	return dst
}

// encodedLen is the length of the envelope of the headers pairs (null if
// nilHeader) and body.
func encodedLen(nilHeader bool, pairs []pair, body []byte) int {
	n := len(`{"Header":,"Body":}`)
	if nilHeader {
		n += len("null")
	} else {
		n += len("{}")
		for _, p := range pairs {
			n += p.kq + len(":") + p.vq + len(",")
		}
		if len(pairs) > 0 {
			n-- // no comma after the last one
		}
	}
	if body == nil {
		n += len("null")
	} else {
		n += len(`""`) + base64.StdEncoding.EncodedLen(len(body))
	}
	return n
}

// htmlSafe reports whether encoding/json writes the ASCII byte c as it is
// in a string (with HTML escaping, its default): all but the control
// characters, '"', '\\', '<', '>' and '&'. The bits of safe0 are the
// bytes 0-63, those of safe1 the bytes 64-127.
func htmlSafe(c byte) bool {
	const (
		safe0 = ^uint64(0) &^ (1<<32 - 1) &^ (1 << '"') &^ (1 << '&') &^ (1 << '<') &^ (1 << '>')
		safe1 = ^uint64(0) &^ (1 << ('\\' - 64))
	)
	if c < 64 {
		return safe0>>c&1 != 0
	}
	return c < utf8.RuneSelf && safe1>>(c-64)&1 != 0
}

// plain returns the length of the longest prefix of s made of printable
// ASCII other than '"' and '\\' (and, if html, '<', '>' and '&'): the
// bytes that encoding/json writes as they are, and reads as they are.
// It looks at eight bytes at a time.
func plain(s string, html bool) int {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	// zero has the high bit of some byte set iff a byte of w is zero.
	zero := func(w uint64) uint64 { return (w - ones) &^ w & high }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte under 0x20 or over 0x7f, a quote, a backslash.
		bad := (w-ones*' ')&^w&high | w&high | zero(w^(ones*'"')) | zero(w^(ones*'\\'))
		if html {
			bad |= zero(w^(ones*'<')) | zero(w^(ones*'>')) | zero(w^(ones*'&'))
		}
		if bad != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; !htmlSafe(c) && (html || c != '<' && c != '>' && c != '&') {
			break
		}
	}
	return i
}

// quotedLen is the length of appendQuoted(nil, s).
func quotedLen(s string) int {
	n := len(s) + 2
	for i := plain(s, true); i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case htmlSafe(c):
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n++ // \x
			default:
				n += 5 // \u00xx
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 5 // one byte becomes \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 3 // three bytes become \u202x
		}
		i += size
	}
	return n
}

// appendQuoted appends s, whose quoted length is n, as a JSON string,
// escaped exactly as encoding/json's appendString escapes it with
// escapeHTML set: \" \\ and the short forms \b \f \n \r \t, other
// control characters and < > & as \u00xx, each byte of invalid UTF-8 as
// \ufffd, U+2028 and U+2029 as \u2028 and \u2029. If n is len(s)+2,
// nothing is to be escaped (each escape makes s longer) and s is copied.
func appendQuoted(dst []byte, s string, n int) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	if n == len(s)+2 { // each escape makes the string longer
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe(c) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Decode returns the header and body of payload if it is go-micro's
// envelope (see the package doc for how strictly), and ok false otherwise.
// The header and body are what json.Unmarshal into a [Message] gives
// (an empty Body "" is a non-nil empty slice), except that an empty Header
// comes back nil. The body is a new slice; the header's strings share one
// allocation.
func Decode(payload []byte) (header map[string]string, body []byte, ok bool) {
	// A payload that is not a JSON object costs a look at its first bytes,
	// one that is not of the envelope's shape a look at its first key.
	if p := skipSpace(payload); len(p) == 0 || p[0] != '{' {
		return nil, nil, false
	}
	s, ok := shaped(payload)
	if !ok {
		return nil, nil, false
	}
	return decode(s)
}

// decode is [Decode] of a payload of the envelope's shape, s.
func decode(s shape) (header map[string]string, body []byte, ok bool) {
	if s.headers > 0 {
		if header, ok = decodeHeader(string(s.header), s.headers); !ok {
			return nil, nil, false
		}
	}
	if s.body != nil {
		if body, ok = decodeBody(s.body); !ok {
			return nil, nil, false
		}
	}
	return header, body, true
}

// decodeHeader decodes obj, a JSON object of n string members whose shape
// [shaped] checked. The strings that need no unescaping are substrings of
// obj, so that the header costs one allocation for all its strings.
func decodeHeader(obj string, n int) (map[string]string, bool) {
	h := make(map[string]string, n)
	p := obj[1:] // '{'
	for {
		var k, v string
		var ok bool
		if k, p, ok = decodeString(skipSpace(p)); !ok {
			return nil, false
		}
		p = skipSpace(skipSpace(p)[1:]) // ':'
		if v, p, ok = decodeString(p); !ok {
			return nil, false
		}
		h[k] = v
		p = skipSpace(p)
		if p[0] == '}' {
			return h, true
		}
		p = p[1:] // ','
	}
}

// decodeString decodes the JSON string at the start of p (its quotes
// found by [shaped]) and returns it and what follows it: a substring of p
// when it has no escape and is valid UTF-8, else unquoted as encoding/json
// unquotes. ok is false if encoding/json would refuse it (a control
// character, a malformed escape).
func decodeString(p string) (s, rest string, ok bool) {
	unescaped, ascii := true, true
	for i := 1 + plain(p[1:], false); i < len(p); i++ {
		switch c := p[i]; {
		case c == '"':
			s, rest = p[1:i], p[i+1:]
			if unescaped && (ascii || utf8.ValidString(s)) {
				return s, rest, true
			}
			b, ok := unquote(nil, s)
			return string(b), rest, ok
		case c == '\\':
			unescaped = false
			i++
		case c < ' ':
			return "", "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", "", false // cannot happen: shaped found the quote
}

// decodeBody decodes str, the JSON string Body (with its quotes, as
// [shaped] found it), as encoding/json decodes a []byte: the string
// unquoted, then base64.StdEncoding.Decode, which skips \r and \n.
func decodeBody(str []byte) ([]byte, bool) {
	s := str[1 : len(str)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		var ok bool
		if s, ok = unquote(nil, string(s)); !ok {
			return nil, false
		}
	} else if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		// Control characters: the other ones are not base64 either.
		return nil, false
	}
	// Bytes of invalid UTF-8 would have become U+FFFD: not base64 either way.
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		return nil, false
	}
	return b[:n], true
}

// unquote appends the JSON string s (without its quotes) unquoted to dst,
// exactly as encoding/json's unquoteBytes does with what its scanner lets
// through: the escapes \" \\ \/ \b \f \n \r \t and \uXXXX (a surrogate
// pair joined, a lone or mismatched surrogate U+FFFD), each byte of invalid
// UTF-8 U+FFFD. ok is false where the scanner would refuse s: a control
// character, an unknown escape, \u without four hex digits.
func unquote(dst []byte, s string) ([]byte, bool) {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			if r+1 >= len(s) {
				return nil, false
			}
			switch e := s[r+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := getu4(s[r:])
				if rr < 0 {
					return nil, false
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != utf8.RuneError {
						r += 6
						dst = utf8.AppendRune(dst, dec)
						continue
					}
					rr = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default:
				return nil, false
			}
			r += 2
		case c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRuneInString(s[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst, true
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s string) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range []byte(s[2:6]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// shape is where [shaped] found the envelope's parts in a payload.
type shape struct {
	header  []byte // the Header object, braces included; nil for null
	headers int    // its members
	body    []byte // the Body string, quotes included; nil for null
}

// shaped reports whether p has the envelope's shape: an object of the keys
// "Header" (null, or an object whose values are strings) and "Body" (null
// or a string), each once, spelt so, and where their values are. What is
// inside the strings (escapes, base64) is left to the decoding. It gives up
// at the first byte that does not fit, so a payload that is not an
// envelope costs a few bytes' look.
func shaped(p []byte) (s shape, ok bool) {
	if p, ok = token(p, '{'); !ok {
		return s, false
	}
	var seenHeader, seenBody bool
	for i := 0; i < 2; i++ {
		if i == 1 {
			if p, ok = token(p, ','); !ok {
				return s, false
			}
		}
		p = skipSpace(p)
		switch {
		case !seenHeader && bytes.HasPrefix(p, headerKey):
			seenHeader = true
			if p, ok = token(p[len(headerKey):], ':'); !ok {
				return s, false
			}
			rest := p
			if rest, s.headers, ok = header(p); !ok {
				return s, false
			}
			if obj := skipSpace(p); obj[0] == '{' {
				s.header = obj[:len(obj)-len(rest)]
			}
			p = rest
		case !seenBody && bytes.HasPrefix(p, bodyKey):
			seenBody = true
			if p, ok = token(p[len(bodyKey):], ':'); !ok {
				return s, false
			}
			rest := p
			if rest, ok = stringOrNull(p); !ok {
				return s, false
			}
			if str := skipSpace(p); str[0] == '"' {
				s.body = str[:len(str)-len(rest)]
			}
			p = rest
		default:
			return s, false
		}
	}
	if p, ok = token(p, '}'); !ok {
		return s, false
	}
	return s, len(skipSpace(p)) == 0
}

var (
	headerKey = []byte(`"Header"`)
	bodyKey   = []byte(`"Body"`)
	null      = []byte("null")
)

// token skips spaces and the byte c, and returns what follows.
func token(p []byte, c byte) ([]byte, bool) {
	p = skipSpace(p)
	if len(p) == 0 || p[0] != c {
		return p, false
	}
	return p[1:], true
}

// header skips null or an object whose values are strings, and counts
// the object's members.
func header(p []byte) (rest []byte, members int, ok bool) {
	p = skipSpace(p)
	if bytes.HasPrefix(p, null) {
		return p[len(null):], 0, true
	}
	if p, ok = token(p, '{'); !ok {
		return p, 0, false
	}
	if q, ok := token(p, '}'); ok {
		return q, 0, true
	}
	for {
		if p, ok = str(skipSpace(p)); !ok {
			return p, 0, false
		}
		if p, ok = token(p, ':'); !ok {
			return p, 0, false
		}
		if p, ok = str(skipSpace(p)); !ok {
			return p, 0, false
		}
		members++
		p = skipSpace(p)
		if len(p) == 0 {
			return p, 0, false
		}
		switch p[0] {
		case ',':
			p = p[1:]
		case '}':
			return p[1:], members, true
		default:
			return p, 0, false
		}
	}
}

// stringOrNull skips null or a string.
func stringOrNull(p []byte) ([]byte, bool) {
	p = skipSpace(p)
	if bytes.HasPrefix(p, null) {
		return p[len(null):], true
	}
	return str(p)
}

// str skips a JSON string starting at p[0]: up to the first quote that no
// backslash escapes (one after an even number of backslashes).
func str(p []byte) ([]byte, bool) {
	if len(p) == 0 || p[0] != '"' {
		return p, false
	}
	for i := 1; ; {
		q := bytes.IndexByte(p[i:], '"')
		if q < 0 {
			return nil, false
		}
		i += q
		bs := 0
		for bs < i-1 && p[i-1-bs] == '\\' {
			bs++
		}
		if bs%2 == 0 {
			return p[i+1:], true
		}
		i++
	}
}

// skipSpace drops JSON's white space from the front of p.
func skipSpace[T []byte | string](p T) T {
	for len(p) > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\r') {
		p = p[1:]
	}
	return p
}
