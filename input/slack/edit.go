package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/microbot/microbot/input"
)

// Messages that are edited in place (input.Editor): the bot shows a long
// command's progress in one message, posted with chat.postMessage in the
// command's thread and changed with chat.update as the command reports.
// Such a message is one message, never split nor uploaded as a file: a
// text longer than PartSize keeps its end (the latest lines), after an
// ellipsis. A slash command's progress goes to its channel with
// chat.postMessage too (a response_url cannot be edited, and its five uses
// are kept for the answer), so it shows only where the app is a member.

// SendEditable posts reply as one message in the channel and thread of to
// and returns its timestamp, the id Edit takes.
func (c *conn) SendEditable(ctx context.Context, to *input.Event, reply *input.Reply) (string, error) {
	if err := c.check(to, reply); err != nil {
		return "", err
	}
	return c.in.sendEditable(ctx, to, reply, "")
}

// Edit replaces the text of the message id (a timestamp SendEditable
// returned) with reply's.
func (c *conn) Edit(ctx context.Context, to *input.Event, id string, reply *input.Reply) error {
	if err := c.check(to, reply); err != nil {
		return err
	}
	if id == "" {
		return errors.New("slack: Edit: no message id")
	}
	_, err := c.in.sendEditable(ctx, to, reply, id)
	return err
}

// check refuses a closed connection and a call without event or reply.
func (c *conn) check(to *input.Event, reply *input.Reply) error {
	select {
	case <-c.closed:
		return fmt.Errorf("slack: %w", input.ErrClosed)
	default:
	}
	if to == nil || reply == nil || to.Room == "" {
		return errors.New("slack: an editable message needs the event it answers (with its channel) and a reply")
	}
	return nil
}

// sendEditable posts reply as one message (ts == "") or updates the
// message ts, in order with the other replies to the channel.
func (in *Input) sendEditable(ctx context.Context, to *input.Event, reply *input.Reply, ts string) (string, error) {
	in.mu.Lock()
	api := in.api
	in.mu.Unlock()
	if api == nil {
		return "", errors.New("slack: Send called before Init")
	}
	release, err := in.lanes.acquire(ctx, to.Room)
	if err != nil {
		return "", fmt.Errorf("slack: message to %s: waiting for earlier replies: %w", to.Room, err)
	}
	defer release()
	text := oneMessage(reply.Text, reply.Format == input.Code)
	opts := []slackapi.MsgOption{
		slackapi.MsgOptionText(text, false), // escaped by oneMessage
		slackapi.MsgOptionDisableLinkUnfurl(),
		slackapi.MsgOptionDisableMediaUnfurl(),
	}
	w := &rateWaiter{left: in.opts.rateLimitWait, in: in}
	if ts != "" {
		err = w.do(ctx, "chat.update", func(ctx context.Context) error {
			_, _, _, err := api.UpdateMessageContext(ctx, to.Room, ts, opts...)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("slack: updating message %s in %s: %w", ts, to.Room, err)
		}
		return ts, nil
	}
	if to.Thread != "" {
		opts = append(opts, slackapi.MsgOptionTS(to.Thread))
	}
	err = w.do(ctx, "chat.postMessage", func(ctx context.Context) error {
		_, ts, err = api.PostMessageContext(ctx, to.Room, opts...)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("slack: message to %s: %w", to.Room, err)
	}
	return ts, nil
}

// oneMessage escapes text for one message of at most PartSize bytes,
// keeping its end when it is longer (the newest lines of a progress
// report), in a code block if code.
func oneMessage(text string, code bool) string {
	text = strings.TrimRight(text, "\n")
	if strings.TrimSpace(text) == "" {
		return "…"
	}
	parts := splitReply(text, code, PartSize-len("…\n"))
	if len(parts) == 1 {
		return parts[0]
	}
	return "…\n" + parts[len(parts)-1]
}
