package input

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrNotConnected is returned (wrapped) by Post when the input has no live
// connection to post on (the console was not opened, the XMPP stream is
// down past the context's deadline).
var ErrNotConnected = errors.New("input not connected")

// Poster is implemented by inputs that can post to a room on their own,
// not in answer to an Event: the bot posts there what the systems it
// watches publish (notifications). Each input renders a Post its way:
// Slack as a message with an attachment (the severity as its colour, the
// fields side by side, the title linked), XMPP and the console as plain
// text with a severity marker (see [PlainText]). Long text is split by the
// input's rules for replies. Post is safe for concurrent use; posts to one
// room are delivered in the order Post was called.
type Poster interface {
	// Post posts p to p.Room, in p.Thread if it is set, and says where
	// the message went.
	Post(ctx context.Context, p *Post) (Posted, error)
}

// Severity says how much a Post matters.
type Severity int

// Severities of a Post, from none to the gravest.
const (
	// SeverityNone shows no severity.
	SeverityNone Severity = iota
	// SeverityInfo is for the record ("deploy started").
	SeverityInfo
	// SeverityOK is good news or an end ("deploy finished", resolved).
	SeverityOK
	// SeverityWarning: someone should look soon.
	SeverityWarning
	// SeverityError: something failed.
	SeverityError
	// SeverityCritical: someone must act now.
	SeverityCritical
)

var severityNames = [...]string{"", "info", "ok", "warning", "error", "critical"}

// String returns the severity's name in lower case ("warning"), or "" for
// SeverityNone and values out of range.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return ""
	}
	return severityNames[s]
}

// Marker returns the plain-text marker of the severity: "[WARNING]", or
// "" for SeverityNone.
func (s Severity) Marker() string {
	if n := s.String(); n != "" {
		return "[" + strings.ToUpper(n) + "]"
	}
	return ""
}

// Field is a named value shown with a Post.
type Field struct {
	Name, Value string
}

// Post is a message the bot posts on its own in a room.
type Post struct {
	// Room is the room or channel, as the input's events name it
	// (Event.Room): a Slack channel id, an XMPP room's bare JID or a
	// person's JID, the console's "console".
	Room string
	// Thread, if set, is the thread to post in: a Posted.Thread this input
	// returned earlier. Inputs without threads ignore it.
	Thread string
	// Title is the headline, one line; may be empty.
	Title string
	// Text is the body; Format says how to show it.
	Text   string
	Format Format
	// Severity is shown as the input can (colour, marker).
	Severity Severity
	// Fields are named values shown with the text, in order.
	Fields []Field
	// Link is a URL with more; Slack links the title to it.
	Link string
	// Source says who sent it (a service, "alertmanager", a topic).
	Source string
	// Time is when it happened; zero: not shown.
	Time time.Time
}

// Posted says where a Post went.
type Posted struct {
	// ID identifies the message posted (Slack: its ts) where the input
	// can address a message later (to edit it); "" otherwise. A post split
	// into several messages is identified by its first.
	ID string
	// Thread is the thread the post is in, or the one it starts (Slack:
	// the ts of the thread's first message): given as Post.Thread, a later
	// post goes to the same thread. "" for inputs without threads.
	Thread string
}

// PlainParts renders p as plain text in three parts, for inputs that show
// plain text (XMPP, the console): head is the severity marker and the
// title ("[WARNING] Disk almost full"); body is the text as it is (Format
// says whether it is preformatted); tail has one line per field
// ("host: db-1"), the link, and "— source, time". Empty parts are "".
func PlainParts(p *Post) (head, body, tail string) {
	head = strings.TrimSpace(strings.Join(nonEmpty(p.Severity.Marker(), oneLine(p.Title)), " "))
	body = strings.Trim(p.Text, "\n")
	var lines []string
	for _, f := range p.Fields {
		lines = append(lines, oneLine(f.Name)+": "+f.Value)
	}
	if p.Link != "" {
		lines = append(lines, p.Link)
	}
	var by []string
	if p.Source != "" {
		by = append(by, oneLine(p.Source))
	}
	if !p.Time.IsZero() {
		by = append(by, p.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if len(by) > 0 {
		lines = append(lines, "— "+strings.Join(by, ", "))
	}
	return head, body, strings.Join(lines, "\n")
}

// PlainText renders p as plain text (see [PlainParts]): the head, the body
// and the tail on lines of their own. fence, if not empty, is put on lines
// of its own around a preformatted (Code) body: XMPP's XEP-0393 "```".
func PlainText(p *Post, fence string) string {
	head, body, tail := PlainParts(p)
	if body != "" && p.Format == Code && fence != "" {
		body = fence + "\n" + body + "\n" + fence
	}
	return strings.Join(nonEmpty(head, body, tail), "\n")
}

// oneLine puts s on one line: line breaks become spaces.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func nonEmpty(ss ...string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
