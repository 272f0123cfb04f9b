// Package input defines how the bot talks to a chat system: an Input, built
// by its package from a plain Config, opens a Conn, a stream of Events
// (messages people typed) on which replies are sent back. An input that is
// also a [Poster] can post to a room on its own (notifications of the
// systems the bot watches), rendered its way.
//
// Inputs know nothing of the registry or of commands. cmd/microbot keeps the
// table of inputs that `--inputs=shell,slack,xmpp` picks any number from.
package input

import (
	"context"
	"errors"
)

// ErrClosed is returned (wrapped) by Conn methods after Close.
var ErrClosed = errors.New("input connection closed")

// ErrPermanent is wrapped by the errors of Stream and Recv that retrying
// cannot fix: bad credentials, a revoked token, a certificate refused. The
// bot then retries the input only at its backoff cap, so a wrong
// configuration never turns into a storm of connections (the problem may
// still be fixed outside the bot, e.g. a token re-enabled). Check for it
// with errors.Is(err, ErrPermanent).
var ErrPermanent = errors.New("permanent failure")

// Input is a chat system the bot can listen on.
type Input interface {
	// String names the input ("shell", "slack", "xmpp").
	String() string
	// Stream connects and returns the stream of events. The bot calls it
	// again, with backoff, when Recv fails.
	Stream(ctx context.Context) (Conn, error)
}

// Conn is one live connection of an Input.
type Conn interface {
	// Recv blocks until the next event. It returns io.EOF when the input
	// ended for good (the console reached end of input), another error when
	// the connection broke and should be opened again.
	Recv(ctx context.Context) (*Event, error)
	// Send delivers reply to the room and thread of the event it answers.
	Send(ctx context.Context, to *Event, reply *Reply) error
	// Close ends the connection and unblocks Recv.
	Close() error
}

// StatusReporter is implemented by inputs that can tell whether they are
// connected right now (for health and readiness).
type StatusReporter interface {
	Connected() bool
}

// Event is one message a person sent.
type Event struct {
	// Input is the name of the input it came from.
	Input string
	// UserID is the sender's immutable id (Slack "U…", an XMPP bare JID, the
	// console user's configured id). Decisions use it, never UserName.
	UserID string
	// UserName is the sender's display name, for humans only.
	UserName string
	// Room is the channel or room it was said in (for a direct message, the
	// conversation's id).
	Room string
	// Thread is the thread it belongs to, if the input has threads.
	Thread string
	// Direct is true for a direct (one-to-one) message.
	Direct bool
	// Addressed is true when the message is for the bot: a direct message, a
	// mention, a slash command, or a line of the console. The input strips
	// the mention from Text.
	Addressed bool
	// Text is what the person typed, with the input's escapes undone.
	Text string
	// Meta carries input-specific data the input needs to reply (message
	// ids, reply URLs). The bot passes it back untouched.
	Meta map[string]string
}

// Format says how a reply's text should be shown.
type Format int

// Formats of a Reply.
const (
	// Plain text.
	Plain Format = iota
	// Code is preformatted text (JSON, aligned tables): inputs that can show
	// a code block do, so columns line up.
	Code
)

// Reply is the bot's answer to an Event.
type Reply struct {
	Text   string
	Format Format
	// Error is true when the reply reports a failure.
	Error bool
	// Progress marks a report of the progress of the command answering the
	// event, sent while it runs: not its answer, which follows. Inputs
	// show it as they show a reply, in the same room and thread; the
	// console does not let the next line go for it.
	Progress bool
}

// Editor is implemented by connections that can change the text of a
// message they sent (Slack's chat.update). The bot shows the progress of a
// long command in one such message, edited as the command reports, rather
// than in one message per report.
type Editor interface {
	// SendEditable sends reply to the room and thread of to, as Send does
	// but in one message (cut to fit if it is too long), and returns the
	// message's id.
	SendEditable(ctx context.Context, to *Event, reply *Reply) (id string, err error)
	// Edit replaces the text of the message id, sent with SendEditable in
	// answer to to, with reply's (cut to fit likewise).
	Edit(ctx context.Context, to *Event, id string, reply *Reply) error
}

// Names maps the fields of an input's Config to the names a person set them
// by, such as a flag and its environment variable ("--slack_app_token (or
// MICRO_SLACK_APP_TOKEN)"), so that a configuration error names what the
// person can change. A field that is not in it is named as in Go.
type Names map[string]string

// Of returns the name of the Config field called field.
func (n Names) Of(field string) string {
	if name, ok := n[field]; ok {
		return name
	}
	return field
}
