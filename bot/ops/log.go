package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mattn/go-isatty"
)

// Log formats.
const (
	FormatAuto = "auto" // text on a terminal, JSON otherwise
	FormatText = "text"
	FormatJSON = "json"
)

// Redacted replaces a secret in the logs.
const Redacted = "[REDACTED]"

// minSecretLen is the shortest value that is looked for in log lines: a
// shorter one would blank out ordinary words.
const minSecretLen = 4

func checkFormat(f string) error {
	switch f {
	case FormatAuto, FormatText, FormatJSON:
		return nil
	}
	return fmt.Errorf("log format %q: want auto, text or json", f)
}

// NewLogger returns a logger writing to w in format (auto: text when w is
// a terminal, JSON otherwise) from level up. Whatever it logs goes through
// [NewRedactingHandler] with secrets: they never reach w.
func NewLogger(w io.Writer, format string, level slog.Leveler, secrets ...string) (*slog.Logger, error) {
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	if format == FormatAuto {
		format = FormatJSON
		if IsTerminal(w) {
			format = FormatText
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == FormatText {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewRedactingHandler(h, secrets...)), nil
}

// IsTerminal reports whether w is a terminal: an *os.File on one, or a
// writer that says whether it writes to one (an IsTerminal() bool method,
// as a writer standing in for a terminal's file has).
func IsTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// SecretKey reports whether a flag or log attribute named key holds a
// secret: its name mentions a token, a password, a secret, a credential or
// an authorization.
func SecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"token", "password", "passwd", "secret", "credential", "authorization", "api_key", "apikey", "private_key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// NewRedactingHandler returns a handler that passes records to h with the
// secrets taken out: the value of any attribute whose key is secret (see
// [SecretKey]) becomes "[REDACTED]", and each secret found in the message
// or in a value (a string, an error, anything printed) is replaced by
// "[REDACTED]", as it is or as Go (%q) or JSON quote it (an error saying
// `password "pa\"ss" refused`). Secrets shorter than 4 bytes are ignored.
func NewRedactingHandler(h slog.Handler, secrets ...string) slog.Handler {
	var ss []string
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		js, _ := json.Marshal(s)
		q := strconv.Quote(s)
		for _, form := range []string{s, q[1 : len(q)-1], string(js[1 : len(js)-1])} {
			if !slices.Contains(ss, form) {
				ss = append(ss, form)
			}
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	slices.SortFunc(ss, func(a, b string) int { return len(b) - len(a) })
	return &redactor{next: h, secrets: ss}
}

type redactor struct {
	next    slog.Handler
	secrets []string
}

func (r *redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *redactor) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.clean(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.next.Handle(ctx, out)
}

func (r *redactor) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = r.attr(a)
	}
	return &redactor{next: r.next.WithAttrs(clean), secrets: r.secrets}
}

func (r *redactor) WithGroup(name string) slog.Handler {
	return &redactor{next: r.next.WithGroup(name), secrets: r.secrets}
}

// clean replaces every secret in s.
func (r *redactor) clean(s string) string {
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	return s
}

// attr returns a without secrets.
func (r *redactor) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if SecretKey(a.Key) && v.Kind() != slog.KindGroup {
		if v.Kind() == slog.KindString && v.String() == "" {
			return a
		}
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); len(r.secrets) > 0 {
			if c := r.clean(s); c != s {
				return slog.String(a.Key, c)
			}
		}
	case slog.KindGroup:
		g := v.Group()
		clean := make([]slog.Attr, len(g))
		for i, ga := range g {
			clean[i] = r.attr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(clean...)}
	case slog.KindAny:
		if len(r.secrets) == 0 {
			return slog.Attr{Key: a.Key, Value: v}
		}
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		case []byte:
			s = string(x)
		default:
			s = fmt.Sprintf("%+v", x)
		}
		if c := r.clean(s); c != s {
			return slog.String(a.Key, c)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
