package audit

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// Redacted replaces a secret in an audit record.
const Redacted = "[REDACTED]"

// secretWords are the parts of a name that mark its value as secret.
const secretWords = `pass|pwd|token|secret|key|auth|cred|cookie|signature|private`

// secretName matches a JSON key whose value is secret.
var secretName = regexp.MustCompile(`(?i)` + secretWords)

// wordRules redact secrets in plain text (and in JSON that does not parse),
// in this order.
var wordRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	// Slack tokens, wherever they are.
	{regexp.MustCompile(`\b(?:xox[a-z]|xapp)-[\w-]+`), Redacted},
	// Passwords in URLs: scheme://user:password@host.
	{regexp.MustCompile(`(://[^/\s:@]+:)[^/\s@]+@`), "${1}" + Redacted + "@"},
	// Bearer tokens and basic credentials.
	{regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[\w.~+/=-]+`), "${1}${2}" + Redacted},
	// name=value and name: value, the name (maybe quoted, maybe a --flag)
	// mentioning a secret; the value quoted or one word.
	{regexp.MustCompile(`(?i)((?:^|[^\w.-])-{0,2}[\w.-]*(?:` + secretWords + `)[\w.-]*["']?\s*[=:]\s*)("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,;}\]]+)`), "${1}" + Redacted},
	// --flag value, the flag mentioning a secret.
	{regexp.MustCompile(`(?i)((?:^|\s)--?[\w.-]*(?:` + secretWords + `)[\w.-]*\s+)("(?:[^"\\]|\\.)*"?|'[^']*'?|\S+)`), "${1}" + Redacted},
}

// Redact returns s with its secrets replaced by [Redacted]:
//
//   - in JSON (an object or array anywhere in s): the value of every key
//     that mentions pass, pwd, token, secret, key, auth, cred, cookie,
//     signature or private (a whole object or array included), and the
//     secrets in every string by the rules below;
//   - elsewhere: the value of name=value and name: value words whose name
//     mentions one of those (--password=x, api_key: x, "token": "x"), the
//     word after such a --flag (--password x), bearer and basic
//     credentials, the password of a URL (https://user:x@host), and Slack
//     tokens (xoxb-…, xapp-…).
//
// It errs on the side of redacting too much.
func Redact(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexAny(s, "{[")
		if i < 0 {
			b.WriteString(redactWords(s))
			return b.String()
		}
		out, n, ok := redactJSON(s[i:])
		if !ok {
			// Not JSON after all: the plain-text rules catch "key": value
			// pairs too.
			b.WriteString(redactWords(s))
			return b.String()
		}
		b.WriteString(redactWords(s[:i]))
		b.WriteString(out)
		s = s[i+n:]
	}
}

func redactWords(s string) string {
	for _, r := range wordRules {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// redactJSON re-encodes the JSON value at the start of s, compact, keys in
// their order, secrets redacted. n is how many bytes of s the value took.
func redactJSON(s string) (out string, n int, ok bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var b strings.Builder
	if err := copyValue(dec, &b, false); err != nil {
		return "", 0, false
	}
	return b.String(), int(dec.InputOffset()), true
}

var errJSON = errors.New("not JSON")

// copyValue copies the next value of dec to b; secret replaces it.
func copyValue(dec *json.Decoder, b *strings.Builder, secret bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t != '{' && t != '[' {
			return errJSON
		}
		if secret {
			b.WriteString(strconv.Quote(Redacted))
			return skipContainer(dec)
		}
		if t == '[' {
			b.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					b.WriteByte(',')
				}
				if err := copyValue(dec, b, false); err != nil {
					return err
				}
			}
			b.WriteByte(']')
		} else {
			b.WriteByte('{')
			for first := true; dec.More(); first = false {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key, ok := k.(string)
				if !ok {
					return errJSON
				}
				if !first {
					b.WriteByte(',')
				}
				writeString(b, redactWords(key))
				b.WriteByte(':')
				if err := copyValue(dec, b, secretName.MatchString(key)); err != nil {
					return err
				}
			}
			b.WriteByte('}')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		if secret {
			t = Redacted
		} else {
			t = redactWords(t)
		}
		writeString(b, t)
	case json.Number:
		if secret {
			writeString(b, Redacted)
		} else {
			b.WriteString(t.String())
		}
	case bool:
		if secret {
			writeString(b, Redacted)
		} else {
			b.WriteString(strconv.FormatBool(t))
		}
	case nil:
		if secret {
			writeString(b, Redacted)
		} else {
			b.WriteString("null")
		}
	}
	return nil
}

// skipContainer consumes the tokens up to the end of the object or array
// whose opening delimiter was just read.
func skipContainer(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
	}
	return nil
}

func writeString(b *strings.Builder, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}
