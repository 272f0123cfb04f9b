// Package audit writes the bot's audit trail: one structured record per
// command a person asked for, saying who asked (input, immutable user id,
// display name, room), what (the command and its arguments, secrets
// redacted), what the access policy decided, and how it went (outcome,
// error, latency).
//
// A [Log] writes each record as one line of JSON to a file (appended,
// created with mode 0600) or to standard error, or hands it to a
// log/slog logger at level INFO. It is safe for concurrent use: each record
// is one Write of one whole line. [Log.Reopen] opens the file again (after
// logrotate moved it), without losing a record.
//
// Arguments and error texts go through [Redact] before they are written:
// the values of JSON keys and of key=value words whose name mentions a
// password, token, secret, key, auth or credential, the word after such a
// --flag, bearer tokens, passwords in URLs and Slack tokens are replaced by
// [REDACTED], and so is any piece of such a secret the error text quotes.
// [Redact] and [Redactor] serve any other text that must keep secrets out
// (a console's history, say).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// Decisions of the access policy, as written in Record.Decision.
const (
	// Allowed: the command ran.
	Allowed = "allowed"
	// Denied: the command did not run (the policy refused it, or a
	// confirmation was refused: wrong code, wrong person).
	Denied = "denied"
	// ConfirmationRequired: the command waits for "confirm CODE".
	ConfirmationRequired = "confirmation-required"
	// Confirmed: the command ran after its confirmation.
	Confirmed = "confirmed"
	// Expired: a confirmation came too late; the command did not run.
	Expired = "expired"
)

// Outcomes of a command that ran, as written in Record.Outcome.
const (
	OK    = "ok"
	Error = "error"
)

// MaxErrorLen is how much of an error text a record keeps, in bytes.
const MaxErrorLen = 200

// MaxArgsLen is how much of the arguments a record keeps, in bytes.
const MaxArgsLen = 4 << 10

// Record is one command someone asked for.
type Record struct {
	// Time is when the bot got the message.
	Time time.Time `json:"time"`
	// Input, UserID, UserName and Room say who asked, and where (for a
	// confirmation: who typed confirm).
	Input    string `json:"input"`
	UserID   string `json:"user_id"`
	UserName string `json:"user_name,omitempty"`
	Room     string `json:"room,omitempty"`
	Direct   bool   `json:"direct,omitempty"`
	// Command is the command's name ("deregister service", "deploy").
	Command string `json:"command"`
	// Args is the text after the command's words (redacted when written).
	Args string `json:"args,omitempty"`
	// Target is the service the command acts on, when it has one.
	Target string `json:"target,omitempty"`
	// Decision is one of the decisions above.
	Decision string `json:"decision"`
	// Rule names what decided: a policy rule ("policy.yaml:12"), a
	// default rule, or the service's metadata.
	Rule string `json:"rule,omitempty"`
	// Reason says why a command was denied or expired.
	Reason string `json:"reason,omitempty"`
	// Code is the confirmation code of a command that needed one.
	Code string `json:"code,omitempty"`
	// RequestedBy and ConfirmedBy are the qualified ids (input:id) of who
	// asked for a confirmed command and who confirmed it.
	RequestedBy string `json:"requested_by,omitempty"`
	ConfirmedBy string `json:"confirmed_by,omitempty"`
	// Outcome is ok or error for a command that ran.
	Outcome string `json:"outcome,omitempty"`
	// Error is the start of the error reply of a command that failed.
	Error string `json:"error,omitempty"`
	// LatencyMS is how long the bot took to answer, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
}

// Log writes records. The zero value is not usable: see [New] and [Open].
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	f      *os.File // the file at path, when writing to one
	path   string
	logger *slog.Logger // when records go to a logger instead
}

// New returns a Log writing JSON lines to w.
func New(w io.Writer) *Log { return &Log{w: w} }

// ToLogger returns a Log handing each record to l at level INFO, as the
// message "audit" with the record's fields as attributes.
func ToLogger(l *slog.Logger) *Log { return &Log{logger: l} }

// Open returns a Log for the --audit_log setting: "-" writes to stderr,
// any other non-empty value is a file to append to (created with mode
// 0600), and "" hands the records to fallback (see [ToLogger]).
func Open(path string, stderr io.Writer, fallback *slog.Logger) (*Log, error) {
	switch path {
	case "":
		return ToLogger(fallback), nil
	case "-":
		return New(stderr), nil
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &Log{w: f, f: f, path: path}, nil
}

// openFile opens the audit log file for appending: never through a
// symbolic link (one planted where the log is, or where logrotate just
// moved it from, would make the bot write into its target), and only a
// regular file of this user's that nobody else may write to.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|openNoFollow, 0o600)
	if isLoop(err) {
		return nil, fmt.Errorf("audit log %s: a symbolic link, which is not followed: give the file's own path", path)
	}
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("audit log %s: not a regular file", path)
	}
	if err == nil {
		err = checkOwn(path, st)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Path returns the file the log appends to, or "" when it writes elsewhere.
func (l *Log) Path() string { return l.path }

// Write writes one record, its arguments and error redacted. It is safe
// for concurrent use.
func (l *Log) Write(r Record) error {
	var rd Redactor // what the arguments hold is kept out of the error too
	r.Args = clip(rd.Redact(r.Args), MaxArgsLen)
	r.Error = clip(rd.Redact(r.Error), MaxErrorLen)
	r.Reason = clip(r.Reason, MaxErrorLen)
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	r.LatencyMS = float64(int64(r.LatencyMS*1000)) / 1000
	if l.logger != nil {
		l.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit", attrs(r)...)
		return nil
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return fmt.Errorf("audit: log closed")
	}
	if _, err := l.w.Write(line); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// attrs returns r's fields as slog attributes, empty ones left out, in
// the order of the struct.
func attrs(r Record) []slog.Attr {
	out := make([]slog.Attr, 0, 12)
	add := func(k, v string) {
		if v != "" {
			out = append(out, slog.String(k, v))
		}
	}
	add("input", r.Input)
	add("user_id", r.UserID)
	add("user_name", r.UserName)
	add("room", r.Room)
	if r.Direct {
		out = append(out, slog.Bool("direct", true))
	}
	add("command", r.Command)
	add("args", r.Args)
	add("target", r.Target)
	add("decision", r.Decision)
	add("rule", r.Rule)
	add("reason", r.Reason)
	add("code", r.Code)
	add("requested_by", r.RequestedBy)
	add("confirmed_by", r.ConfirmedBy)
	add("outcome", r.Outcome)
	add("error", r.Error)
	return append(out, slog.Float64("latency_ms", r.LatencyMS))
}

// Reopen opens the file again (it may have been moved away by log
// rotation) and closes the old one; records written meanwhile go to one or
// the other. It does nothing for a Log that writes no file.
func (l *Log) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f, l.w = f, f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file, if the log writes one; later writes fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.w = nil, nil
	return err
}

// clip shortens s to at most n bytes, at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
