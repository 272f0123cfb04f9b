package audit

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Redacted replaces a secret in an audit record.
const Redacted = "[REDACTED]"

// secretWords are the parts of a name that mark its value as secret.
const secretWords = `pass|pwd|token|secret|key|auth|cred|cookie|signature|private`

// secretName matches a JSON key whose value is secret.
var secretName = regexp.MustCompile(`(?i)` + secretWords)

// secretFlag matches a word that is a --flag (or -flag) mentioning a
// secret: the word after it is secret.
var secretFlag = regexp.MustCompile(`(?i)^--?[\w.-]*(?:` + secretWords + `)[\w.-]*$`)

// wordRule redacts the text its regular expression's group value matches
// (0: the whole match).
type wordRule struct {
	re    *regexp.Regexp
	value int
}

// wordRules redact secrets in plain text (and in JSON that does not parse),
// in this order.
var wordRules = []wordRule{
	// Slack tokens, wherever they are.
	{regexp.MustCompile(`\b(?:xox[a-z]|xapp)-[\w-]+`), 0},
	// Passwords in URLs: scheme://user:password@host.
	{regexp.MustCompile(`://[^/\s:@]+:([^/\s@]+)@`), 1},
	// Bearer tokens and basic credentials.
	{regexp.MustCompile(`(?i)\b(?:bearer|basic)\s+([\w.~+/=-]+)`), 1},
	// name=value and name: value, the name (maybe quoted, maybe a --flag)
	// mentioning a secret; the value quoted or one word.
	{regexp.MustCompile(`(?i)(?:^|[^\w.-])-{0,2}[\w.-]*(?:` + secretWords + `)[\w.-]*["']?\s*[=:]\s*("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,;}\]]+)`), 1},
	// --flag value, the flag (maybe quoted) mentioning a secret.
	{regexp.MustCompile(`(?i)(?:^|\s)["']?--?[\w.-]*(?:` + secretWords + `)[\w.-]*["']?\s+("(?:[^"\\]|\\.)*"?|'[^']*'?|\S+)`), 1},
}

// Redact returns s with its secrets replaced by [Redacted]:
//
//   - in JSON (an object or array anywhere in s): the value of every key
//     that mentions pass, pwd, token, secret, key, auth, cred, cookie,
//     signature or private (a whole object or array included), the
//     element after such a --flag in an array (["--password", "x"]), and
//     the secrets in every string by the rules below;
//   - elsewhere: the value of name=value and name: value words whose name
//     mentions one of those (--password=x, api_key: x, "token": "x"), the
//     word after such a --flag, quoted or not (--password x, "--token"
//     "x"), bearer and basic credentials, the password of a URL
//     (https://user:x@host), and Slack tokens (xoxb-…, xapp-…);
//   - then any other occurrence of a secret found, whole or a piece of it
//     (see [Redactor]).
//
// It errs on the side of redacting too much. It is a [Redactor] used once:
// use one Redactor for the texts of one record.
func Redact(s string) string {
	var r Redactor
	return r.Redact(s)
}

// HasSecret reports whether s holds something [Redact] takes out, by the
// same rules: the test for text that must not be kept at all (the console
// does not write such a line to its history file). Text that already shows
// [Redacted] counts as holding one.
func HasSecret(s string) bool {
	return strings.Contains(s, Redacted) || strings.Contains(Redact(s), Redacted)
}

// Redactor redacts the texts of one record (a command's arguments, then
// its error): a secret found in one text is also removed from the texts
// redacted after it, whole or any piece of it of at least minPiece bytes.
// So an error that quotes the start of a secret from the arguments
// ("invalid JSON at character 11 (\"s3cr3tT0kenV…\")") keeps none of it.
// The zero Redactor is ready to use; it is not safe for concurrent use.
type Redactor struct {
	secrets []string // secret values found so far, each once
}

// Redact returns s with its secrets, and those found before by r,
// replaced by [Redacted] (see [Redact] for the rules).
func (r *Redactor) Redact(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexAny(s, "{[")
		if i < 0 {
			b.WriteString(r.words(s))
			break
		}
		out, n, ok := r.json(s[i:])
		if !ok {
			// Not JSON after all: the plain-text rules catch "key": value
			// pairs too.
			b.WriteString(r.words(s))
			break
		}
		b.WriteString(r.words(s[:i]))
		b.WriteString(out)
		s = s[i+n:]
	}
	return r.scrub(b.String())
}

// minPiece is the shortest piece of a secret removed from other text, and
// the shortest secret looked for elsewhere at all: shorter ones would
// redact ordinary words.
const minPiece = 6

// found notes a secret value (unquoted, and as Go would quote it, which is
// how messages often show text).
func (r *Redactor) found(v string) {
	if u, err := strconv.Unquote(v); err == nil {
		v = u
	} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = v[1 : len(v)-1]
	}
	v = strings.Trim(v, `"'`)
	q := strconv.Quote(v)
	for _, s := range []string{v, q[1 : len(q)-1]} {
		if len(s) >= minPiece && s != Redacted && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
}

// scrub replaces every run of s made of pieces of a known secret (each
// minPiece bytes of s at least a piece of one) by [Redacted].
func (r *Redactor) scrub(s string) string {
	if len(r.secrets) == 0 || len(s) < minPiece {
		return s
	}
	pieces := map[string]bool{}
	for _, sec := range r.secrets {
		for i := 0; i+minPiece <= len(sec); i++ {
			pieces[sec[i:i+minPiece]] = true
		}
	}
	covered := make([]bool, len(s))
	hit := false
	for i := 0; i+minPiece <= len(s); i++ {
		if pieces[s[i:i+minPiece]] {
			hit = true
			for j := i; j < i+minPiece; j++ {
				covered[j] = true
			}
		}
	}
	if !hit {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		for i < len(s) && covered[i] {
			i++
		}
		b.WriteString(Redacted)
	}
	return b.String()
}

// words applies the plain-text rules to s.
func (r *Redactor) words(s string) string {
	for _, rule := range wordRules {
		s = r.apply(rule, s)
	}
	return s
}

// apply replaces the value of every match of rule in s.
func (r *Redactor) apply(rule wordRule, s string) string {
	ms := rule.re.FindAllStringSubmatchIndex(s, -1)
	if ms == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		start, end := m[2*rule.value], m[2*rule.value+1]
		if start < 0 {
			continue
		}
		r.found(s[start:end])
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// json re-encodes the JSON value at the start of s, compact, keys in their
// order, secrets redacted. n is how many bytes of s the value took.
func (r *Redactor) json(s string) (out string, n int, ok bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var b strings.Builder
	if err := r.copyValue(dec, &b, false); err != nil {
		return "", 0, false
	}
	return b.String(), int(dec.InputOffset()), true
}

var errJSON = errors.New("not JSON")

// copyValue copies the next value of dec to b; secret replaces it.
func (r *Redactor) copyValue(dec *json.Decoder, b *strings.Builder, secret bool) error {
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
			return r.skipContainer(dec, t)
		}
		if t == '[' {
			b.WriteByte('[')
			// An element after a secret --flag is secret: ["--password", "x"].
			afterFlag := false
			for first := true; dec.More(); first = false {
				if !first {
					b.WriteByte(',')
				}
				n := b.Len()
				if err := r.copyValue(dec, b, afterFlag); err != nil {
					return err
				}
				afterFlag = secretFlag.MatchString(strings.Trim(b.String()[n:], `"`))
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
				writeString(b, r.words(key))
				b.WriteByte(':')
				if err := r.copyValue(dec, b, secretName.MatchString(key)); err != nil {
					return err
				}
			}
			b.WriteByte('}')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		if secret {
			r.found(t)
			t = Redacted
		} else {
			t = r.words(t)
		}
		writeString(b, t)
	case json.Number:
		if secret {
			r.found(t.String())
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
// whose opening delimiter (open) was just read, noting its string and
// number values (not its keys) as secrets.
func (r *Redactor) skipContainer(dec *json.Decoder, open json.Delim) error {
	stack := []json.Delim{open}
	isKey := open == '{' // whether the next token of an object is a key
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				stack = append(stack, t)
				isKey = t == '{'
				continue
			}
			stack = stack[:len(stack)-1]
			// The container was a value: a key comes next in an object.
			isKey = len(stack) > 0 && stack[len(stack)-1] == '{'
			continue
		case string:
			if !isKey {
				r.found(t)
			}
		case json.Number:
			r.found(t.String())
		}
		isKey = stack[len(stack)-1] == '{' && !isKey
	}
	return nil
}

func writeString(b *strings.Builder, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}
