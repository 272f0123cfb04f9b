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
// decoded, by encoding/json as go-micro decodes it.
package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Message is go-micro's broker.Message, whose JSON is the envelope.
type Message struct {
	Header map[string]string
	Body   []byte
}

// Encode returns the envelope of header and body, byte for byte as
// go-micro's JSON codec writes it (a nil header is "Header":null).
func Encode(header map[string]string, body []byte) ([]byte, error) {
	b, err := json.Marshal(Message{Header: header, Body: body})
	if err != nil {
		return nil, fmt.Errorf("encoding go-micro's broker message: %w", err)
	}
	return b, nil
}

// Decode returns the header and body of payload if it is go-micro's
// envelope (see the package doc for how strictly), and ok false otherwise.
// An empty Header comes back nil.
func Decode(payload []byte) (header map[string]string, body []byte, ok bool) {
	if !shaped(payload) {
		return nil, nil, false
	}
	var m Message
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, nil, false // an escape or the base64 is wrong
	}
	if len(m.Header) == 0 {
		m.Header = nil
	}
	return m.Header, m.Body, true
}

// shaped reports whether p has the envelope's shape: an object of the keys
// "Header" (null, or an object whose values are strings) and "Body" (null
// or a string), each once, spelt so. What is inside the strings (escapes,
// base64) is left to encoding/json. It gives up at the first byte that
// does not fit, so a payload that is not an envelope costs a few bytes'
// look.
func shaped(p []byte) bool {
	p, ok := token(p, '{')
	if !ok {
		return false
	}
	var seenHeader, seenBody bool
	for i := 0; i < 2; i++ {
		if i == 1 {
			if p, ok = token(p, ','); !ok {
				return false
			}
		}
		p = skipSpace(p)
		switch {
		case !seenHeader && bytes.HasPrefix(p, headerKey):
			seenHeader = true
			if p, ok = token(p[len(headerKey):], ':'); !ok {
				return false
			}
			if p, ok = header(p); !ok {
				return false
			}
		case !seenBody && bytes.HasPrefix(p, bodyKey):
			seenBody = true
			if p, ok = token(p[len(bodyKey):], ':'); !ok {
				return false
			}
			if p, ok = stringOrNull(p); !ok {
				return false
			}
		default:
			return false
		}
	}
	if p, ok = token(p, '}'); !ok {
		return false
	}
	return len(skipSpace(p)) == 0
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

// header skips null or an object whose values are strings.
func header(p []byte) ([]byte, bool) {
	p = skipSpace(p)
	if bytes.HasPrefix(p, null) {
		return p[len(null):], true
	}
	p, ok := token(p, '{')
	if !ok {
		return p, false
	}
	if q, ok := token(p, '}'); ok {
		return q, true
	}
	for {
		if p, ok = str(skipSpace(p)); !ok {
			return p, false
		}
		if p, ok = token(p, ':'); !ok {
			return p, false
		}
		if p, ok = str(skipSpace(p)); !ok {
			return p, false
		}
		p = skipSpace(p)
		if len(p) == 0 {
			return p, false
		}
		switch p[0] {
		case ',':
			p = p[1:]
		case '}':
			return p[1:], true
		default:
			return p, false
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
// backslash escapes.
func str(p []byte) ([]byte, bool) {
	if len(p) == 0 || p[0] != '"' {
		return p, false
	}
	for i := 1; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '"':
			return p[i+1:], true
		}
	}
	return nil, false
}

// skipSpace drops JSON's white space from the front of p.
func skipSpace(p []byte) []byte {
	for len(p) > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\r') {
		p = p[1:]
	}
	return p
}
