package command

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/microbot/microbot/input"
)

// ErrReserved is returned (wrapped) by [Table.Put] when a command would take
// over the word of a built-in that cannot be replaced, or a reserved word.
var ErrReserved = errors.New("name reserved by a built-in command")

// ErrUsage is wrapped by the errors a command returns when it was called
// with wrong or missing parameters; the reply then shows the usage line.
var ErrUsage = errors.New("usage")

// RunFunc runs a command. It returns the reply, or an error that the bot
// shows as "error: ..." (Reply.Error set). ctx carries the command's
// deadline and the caller's identity as RPC metadata.
type RunFunc func(ctx context.Context, req *Request) (*input.Reply, error)

// MetaService is the Metadata key naming the service that serves a command
// (set for command services).
const MetaService = "service"

// Command is something the bot can do.
type Command struct {
	// Name is the command's name and first pattern: one or more literal
	// words ("ping", "list services", "the three laws").
	Name string
	// Aliases are more patterns that run the command ("call" for query).
	Aliases []string
	// Usage is the usage line shown by help ("get service [name]").
	Usage string
	// Description says what the command does ("Returns a registered
	// service").
	Description string
	// Replaceable marks a built-in that a command added with [Table.Put]
	// may hide while it is there (echo, hello, ping, time, the three laws).
	Replaceable bool
	// Metadata is data about the command for policies (for a command
	// service: the service's registry metadata, plus [MetaService] naming
	// it). It must not be changed once the command is in a table.
	Metadata map[string]string
	// Run does the work.
	Run RunFunc
	// Complete, if set, proposes values of the parameter being typed, for
	// the console's Tab key (see [Table.Complete]).
	Complete CompleteFunc
}

// HelpLine returns the command's line in help: "usage - description", with
// its aliases named.
func (c *Command) HelpLine() string {
	usage := c.Usage
	if usage == "" {
		usage = c.Name
	}
	line := usage
	if c.Description != "" {
		line += " - " + c.Description
	}
	if len(c.Aliases) > 0 {
		line += " (alias: " + strings.Join(c.Aliases, ", ") + ")"
	}
	return line
}

// patterns returns the command's patterns, each as folded words.
func (c *Command) patterns() [][]string {
	out := make([][]string, 0, 1+len(c.Aliases))
	for _, p := range append([]string{c.Name}, c.Aliases...) {
		words := strings.Fields(fold(p))
		if len(words) > 0 {
			out = append(out, words)
		}
	}
	return out
}

// Request is one line of chat on its way through the bot: the event, its
// words, and the command it matched.
type Request struct {
	// Event is the chat event (nil when a line is run without one).
	Event *input.Event
	// Text is the event's text, normalised (see [Normalize]).
	Text string
	// Words are the words of Text.
	Words []Word
	// Command is the command the line matched, nil if none did.
	Command *Command
	// Matched is how many of Words the command's pattern took.
	Matched int
	// Similar, when Command is nil, lists the commands with a pattern that
	// starts with the line's first word, for a "did you mean" reply.
	Similar []*Command
}

// Args returns every word's text, the command's words included (what a
// command service receives in ExecRequest.Args).
func (r *Request) Args() []string {
	out := make([]string, len(r.Words))
	for i, w := range r.Words {
		out[i] = w.Text
	}
	return out
}

// Params returns the text of the words after the command's pattern.
func (r *Request) Params() []string {
	return r.Args()[min(r.Matched, len(r.Words)):]
}

// Rest returns the raw text of the line from parameter i (counted as in
// Params) to the end, verbatim: spaces and quotes as typed. It is empty if
// there is no such parameter.
func (r *Request) Rest(i int) string {
	j := r.Matched + i
	if i < 0 || j >= len(r.Words) {
		return ""
	}
	return r.Text[r.Words[j].Start:]
}

// Visibility decides whether the caller of req may see cmd in help and in
// suggestions. An access policy provides one with [WithVisibility].
type Visibility func(ctx context.Context, req *Request, cmd *Command) bool

// Usagef returns an error wrapping [ErrUsage] for cmd: the message, then
// the usage line.
func Usagef(cmd *Command, format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...), usage: cmd.Usage}
}

type usageError struct{ msg, usage string }

func (e *usageError) Error() string { return e.msg + " (usage: " + e.usage + ")" }
func (e *usageError) Unwrap() error { return ErrUsage }

// Text returns a plain reply.
func Text(s string) *input.Reply { return &input.Reply{Text: s} }

// Code returns a preformatted reply (JSON, aligned tables).
func Code(s string) *input.Reply { return &input.Reply{Text: s, Format: input.Code} }

// Errorf returns an error reply: "error: " and the message.
func Errorf(format string, a ...any) *input.Reply {
	return &input.Reply{Text: "error: " + fmt.Sprintf(format, a...), Error: true}
}
