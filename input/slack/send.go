package slack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/microbot/microbot/input"
)

// send delivers a reply: split into messages, or uploaded as a file, in the
// thread of to, after every earlier reply to the same channel.
func (in *Input) send(ctx context.Context, to *input.Event, reply *input.Reply) error {
	if to == nil || reply == nil {
		return errors.New("slack: Send needs the event it answers and a reply")
	}
	if to.Room == "" {
		return errors.New("slack: Send: the event has no channel (Room)")
	}
	in.mu.Lock()
	api, hc := in.api, in.http
	in.mu.Unlock()
	if api == nil {
		return errors.New("slack: Send called before Init")
	}
	release, err := in.lanes.acquire(ctx, to.Room)
	if err != nil {
		return fmt.Errorf("slack: reply to %s: waiting for earlier replies: %w", to.Room, err)
	}
	defer release()

	text, code := reply.Text, reply.Format == input.Code
	if strings.TrimSpace(text) == "" {
		text, code = "(no output)", false
	}
	responseURL := ""
	if key := to.Meta[MetaSlash]; key != "" {
		responseURL, _ = in.responses.get(key)
	}
	maxParts := MaxParts
	if responseURL != "" {
		maxParts = MaxSlashParts
	}
	w := &rateWaiter{left: in.opts.rateLimitWait, in: in}
	var parts []string
	if len(text) <= FileThreshold {
		parts = splitReply(text, code, PartSize)
	}
	if parts == nil || len(parts) > maxParts {
		return in.sendFile(ctx, api, hc, w, to, responseURL, text)
	}
	for i, part := range parts {
		if err := in.sendPart(ctx, api, hc, w, to, &responseURL, part); err != nil {
			return fmt.Errorf("slack: reply to %s, part %d of %d: %w", to.Room, i+1, len(parts), err)
		}
	}
	return nil
}

// sendPart posts one message: through the slash command's response_url if
// there is one (falling back to the channel when it fails), otherwise with
// chat.postMessage in the thread of to.
func (in *Input) sendPart(ctx context.Context, api *slackapi.Client, hc *http.Client, w *rateWaiter, to *input.Event, responseURL *string, text string) error {
	if *responseURL != "" {
		err := w.do(ctx, "response_url", func(ctx context.Context) error {
			return postResponse(ctx, hc, *responseURL, text)
		})
		if err == nil || ctx.Err() != nil || isRateLimit(err) {
			return err
		}
		in.log.Warn("slash command response_url failed; replying in the channel instead", "channel", to.Room, "err", err)
		*responseURL = ""
	}
	return w.do(ctx, "chat.postMessage", func(ctx context.Context) error {
		opts := []slackapi.MsgOption{
			slackapi.MsgOptionText(text, false), // escaped by splitReply
			slackapi.MsgOptionDisableLinkUnfurl(),
			slackapi.MsgOptionDisableMediaUnfurl(),
		}
		if to.Thread != "" {
			opts = append(opts, slackapi.MsgOptionTS(to.Thread))
		}
		_, _, err := api.PostMessageContext(ctx, to.Room, opts...)
		return err
	})
}

// postResponse answers a slash command through its response_url, visible
// to the channel. The URL is a capability of its own: no token is sent.
func postResponse(ctx context.Context, hc *http.Client, url, text string) error {
	no := false
	return slackapi.PostWebhookCustomHTTPContext(ctx, url, hc, &slackapi.WebhookMessage{
		Text:         text,
		ResponseType: slackapi.ResponseTypeInChannel,
		UnfurlLinks:  &no,
		UnfurlMedia:  &no,
	})
}

// sendFile uploads text as a file into the thread of to (files.uploadV2:
// files.getUploadURLExternal, the upload, files.completeUploadExternal).
func (in *Input) sendFile(ctx context.Context, api *slackapi.Client, hc *http.Client, w *rateWaiter, to *input.Event, responseURL, text string) error {
	const name = "reply.txt"
	size := sizeText(len(text))
	var u *slackapi.GetUploadURLExternalResponse
	err := w.do(ctx, "files.getUploadURLExternal", func(ctx context.Context) (err error) {
		u, err = api.GetUploadURLExternalContext(ctx, slackapi.GetUploadURLExternalParameters{FileName: name, FileSize: len(text)})
		return err
	})
	if err == nil {
		err = w.do(ctx, "file upload", func(ctx context.Context) error {
			return api.UploadToURL(ctx, slackapi.UploadToURLParameters{UploadURL: u.UploadURL, Content: text, Filename: name})
		})
	}
	if err == nil {
		err = w.do(ctx, "files.completeUploadExternal", func(ctx context.Context) error {
			_, err := api.CompleteUploadExternalContext(ctx, slackapi.CompleteUploadExternalParameters{
				Files:           []slackapi.FileSummary{{ID: u.FileID, Title: "reply (" + size + ")"}},
				Channel:         to.Room,
				ThreadTimestamp: to.Thread,
				InitialComment:  escaper.Replace("The answer is " + size + " long, so it comes as a file."),
			})
			return err
		})
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("slack: reply to %s as a file (%s): %w", to.Room, size, err)
	if responseURL != "" && ctx.Err() == nil {
		// A slash command from a channel the bot is not in: say why there is
		// no answer rather than leave the person waiting.
		notice := "The answer is " + size + " long, too long for a slash command reply, and I could not attach it as a file here. Invite me to the channel, or ask me in a direct message."
		if nerr := postResponse(ctx, hc, responseURL, escaper.Replace(notice)); nerr == nil {
			in.log.Warn("long slash command reply not delivered; the person was told why", "err", err)
			return nil
		}
	}
	return err
}

// sizeText writes a byte count for people ("103 KB").
func sizeText(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d KB", (n+1023)/1024)
}

// rateWaiter retries calls that Slack rate-limited (HTTP 429), after the
// Retry-After it asks for, within a total wait budget for one reply.
type rateWaiter struct {
	left time.Duration
	in   *Input
}

func (w *rateWaiter) do(ctx context.Context, what string, call func(context.Context) error) error {
	for {
		err := call(ctx)
		if !isRateLimit(err) {
			return err
		}
		wait := time.Second
		if rl, ok := errors.AsType[*slackapi.RateLimitedError](err); ok && rl.RetryAfter > 0 {
			wait = rl.RetryAfter
		}
		if wait > w.left {
			return fmt.Errorf("%s: rate limited: Slack asks to wait %s, more than the %s left of the wait allowed for one reply: %w", what, wait, w.left, err)
		}
		w.left -= wait
		w.in.log.Info("rate limited by Slack; waiting", "method", what, "retry_after", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting out a rate limit: %w", what, ctx.Err())
		}
	}
}

// isRateLimit reports whether err is Slack's HTTP 429.
func isRateLimit(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*slackapi.RateLimitedError](err); ok {
		return true
	}
	sc, ok := errors.AsType[slackapi.StatusCodeError](err)
	return ok && sc.Code == http.StatusTooManyRequests
}

// Colours of the severities (the attachment's colour bar).
var severityColours = map[input.Severity]string{
	input.SeverityInfo:     "#439FE0",
	input.SeverityOK:       "good",
	input.SeverityWarning:  "warning",
	input.SeverityError:    "danger",
	input.SeverityCritical: "#7A0019",
}

// maxShortField is the longest field value shown side by side with
// another (a longer one, or one of several lines, takes a row of its own).
const maxShortField = 40

// Post posts p in channel p.Room (in the thread p.Thread, when set) as a
// message with one attachment: the severity as its colour, the title
// linked to p.Link, the text, the fields side by side, and p.Source and
// p.Time in its footer. The text is split as replies are (see the package
// doc): the first part goes in the attachment, the others follow as
// messages in the same place; a text past 40 KB, or of more parts than
// fit, is uploaded as a file. Rate limits are waited out as for replies,
// and posts and replies to one channel go out in the order they were
// asked. Posted.ID is the message's ts; Posted.Thread is p.Thread, or the
// message's ts when it was posted at the top level (a later post given it
// starts the thread).
func (in *Input) Post(ctx context.Context, p *input.Post) (input.Posted, error) {
	if p.Room == "" {
		return input.Posted{}, errors.New("slack: Post: no channel (Room)")
	}
	in.mu.Lock()
	api, hc := in.api, in.http
	in.mu.Unlock()
	if api == nil {
		return input.Posted{}, errors.New("slack: Post called before Init")
	}
	release, err := in.lanes.acquire(ctx, p.Room)
	if err != nil {
		return input.Posted{}, fmt.Errorf("slack: post to %s: waiting for earlier messages: %w", p.Room, err)
	}
	defer release()

	w := &rateWaiter{left: in.opts.rateLimitWait, in: in}
	text, code := strings.Trim(p.Text, "\n"), p.Format == input.Code
	var parts []string
	if strings.TrimSpace(text) != "" && len(text) <= FileThreshold {
		parts = splitReply(text, code, PartSize)
	}
	asFile := strings.TrimSpace(text) != "" && (parts == nil || len(parts) > MaxParts)
	first := ""
	switch {
	case asFile:
		first = escaper.Replace("The text is " + sizeText(len(text)) + " long, so it comes as a file.")
		parts = nil
	case len(parts) > 0:
		first, parts = parts[0], parts[1:]
	}
	var ts string
	err = w.do(ctx, "chat.postMessage", func(ctx context.Context) (err error) {
		opts := []slackapi.MsgOption{
			slackapi.MsgOptionAttachments(attachment(p, first)),
			slackapi.MsgOptionDisableLinkUnfurl(),
			slackapi.MsgOptionDisableMediaUnfurl(),
		}
		if p.Thread != "" {
			opts = append(opts, slackapi.MsgOptionTS(p.Thread))
		}
		_, ts, err = api.PostMessageContext(ctx, p.Room, opts...)
		return err
	})
	if err != nil {
		return input.Posted{}, fmt.Errorf("slack: post to %s: %w", p.Room, err)
	}
	posted := input.Posted{ID: ts, Thread: cmp.Or(p.Thread, ts)}
	to := &input.Event{Room: p.Room, Thread: p.Thread}
	noResponse := ""
	for i, part := range parts {
		if err := in.sendPart(ctx, api, hc, w, to, &noResponse, part); err != nil {
			return posted, fmt.Errorf("slack: post to %s, part %d of %d: %w", p.Room, i+2, len(parts)+1, err)
		}
	}
	if asFile {
		if err := in.sendFile(ctx, api, hc, w, to, "", text); err != nil {
			return posted, err
		}
	}
	return posted, nil
}

// attachment is the attachment of a post, text its first part (escaped).
func attachment(p *input.Post, text string) slackapi.Attachment {
	a := slackapi.Attachment{
		Color:      severityColours[p.Severity],
		Title:      escaper.Replace(oneLine(p.Title)),
		Text:       text,
		Footer:     escaper.Replace(oneLine(p.Source)),
		MarkdownIn: []string{"text"},
	}
	if u, err := url.Parse(p.Link); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		if a.Title != "" {
			a.TitleLink = p.Link
		} else {
			a.Text = strings.TrimLeft(a.Text+"\n"+escaper.Replace(p.Link), "\n")
		}
	} else if p.Link != "" {
		a.Text = strings.TrimLeft(a.Text+"\n"+escaper.Replace(p.Link), "\n")
	}
	for _, f := range p.Fields {
		a.Fields = append(a.Fields, slackapi.AttachmentField{
			Title: escaper.Replace(oneLine(f.Name)),
			Value: escaper.Replace(f.Value),
			Short: len(f.Value) <= maxShortField && !strings.Contains(f.Value, "\n"),
		})
	}
	if !p.Time.IsZero() {
		a.Ts = json.Number(strconv.FormatInt(p.Time.Unix(), 10))
	}
	head, _, _ := input.PlainParts(p)
	a.Fallback = escaper.Replace(cmp.Or(head, oneLine(p.Text), p.Source))
	return a
}

// oneLine puts s on one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
