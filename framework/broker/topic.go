package broker

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameLen is the longest topic or queue group name, in bytes.
const MaxNameLen = 255

// ValidateTopic checks that topic is one every broker carries the same way:
// one or more parts separated by dots ("go.micro.srv.message",
// "alerts.prod"), each part made of ASCII letters, digits, '-' and '_', at
// most MaxNameLen bytes in all. Wildcards (NATS's '*' and '>', MQTT's '+'
// and '#'), '/', spaces, '$' and empty parts are refused: the http broker
// cannot match patterns, and the same name must mean the same topic on
// every broker. The error wraps ErrInvalid and says what is wrong.
func ValidateTopic(topic string) error {
	return validateName("topic", topic)
}

// BroadcastVersion is the registry version under which go-micro's http
// broker registers plain (not queue group) subscribers; it cannot name a
// queue group.
const BroadcastVersion = "ff.http.broadcast"

// TopicServicePrefix starts the registry name of the http broker's
// subscriptions (go-micro v1's wire): the service "topic:alerts" is the
// subscribers of the topic alerts, registered by their inboxes, and no
// service of anyone's.
const TopicServicePrefix = "topic:"

// TopicOfService returns the topic whose http broker subscribers the
// registry service called name is, and whether it is such a
// registration ("topic:alerts" is the topic alerts); "", false for
// another name.
func TopicOfService(name string) (topic string, ok bool) {
	if topic, ok = strings.CutPrefix(name, TopicServicePrefix); !ok {
		return "", false
	}
	return topic, true
}

// ValidateQueue checks a queue group name: the same alphabet and length as
// topics, and not BroadcastVersion. The error wraps ErrInvalid.
func ValidateQueue(queue string) error {
	if queue == BroadcastVersion {
		return fmt.Errorf("%w queue group %q: reserved (go-micro's http broker registers plain subscribers under it)", ErrInvalid, queue)
	}
	return validateName("queue group", queue)
}

func validateName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w %s: empty", ErrInvalid, what)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%w %s %.32q…: %d bytes, at most %d", ErrInvalid, what, s, len(s), MaxNameLen)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if i == start {
				return fmt.Errorf("%w %s %q: empty part at byte %d (parts are separated by single dots)", ErrInvalid, what, s, i)
			}
			start = i + 1
			continue
		}
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '*' || c == '>' || c == '+' || c == '#':
			return fmt.Errorf("%w %s %q: wildcard %q at byte %d: subscribe to each topic by its name", ErrInvalid, what, s, c, i)
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return fmt.Errorf("%w %s %q: character %q at byte %d (allowed: ASCII letters, digits, '-', '_', and '.' between parts)", ErrInvalid, what, s, r, i)
		}
	}
	return nil
}

// MaxHeaderBytes bounds the headers of a message: names and values, in all.
const MaxHeaderBytes = 64 << 10

// ValidateHeader checks that every broker carries h as it is: names made of
// the characters of HTTP header names (letters, digits and
// !#$%&'*+-.^_`|~), values without CR, LF or NUL, MaxHeaderBytes in all.
// The error wraps ErrInvalid.
func ValidateHeader(h map[string]string) error {
	total := 0
	for k, v := range h {
		if err := ValidateHeaderField(k, v, &total); err != nil {
			return err
		}
	}
	return nil
}

// ValidateHeaderField is ValidateHeader for one header, for a broker that
// checks the headers as it converts them; total sums the sizes of the
// headers checked so far.
func ValidateHeaderField(k, v string, total *int) error {
	if k == "" {
		return fmt.Errorf("%w header: empty name", ErrInvalid)
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			r, _ := utf8.DecodeRuneInString(k[i:])
			return fmt.Errorf("%w header name %q: character %q (allowed: letters, digits and !#$%%&'*+-.^_`|~)", ErrInvalid, k, r)
		}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= '\r' && (c == '\r' || c == '\n' || c == 0) { // one comparison for most bytes
			return fmt.Errorf("%w header %s: its value holds %q", ErrInvalid, k, rune(c))
		}
	}
	if *total += len(k) + len(v); *total > MaxHeaderBytes {
		return fmt.Errorf("%w headers: over %d bytes", ErrInvalid, MaxHeaderBytes)
	}
	return nil
}

func isTokenChar(c byte) bool { return tokenChars[c] }

// tokenChars marks the bytes allowed in a header name (never changed).
var tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()
