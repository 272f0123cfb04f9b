package slacktestws

import (
	"context"
	"net/http"
	"time"
	"unicode/utf8"
)

// Update is a change of a posted message's text with chat.update.
type Update struct {
	Channel string
	TS      string // the message changed
	Text    string // its new text, as sent, Slack escapes included
	At      time.Time
}

// updateMessage serves chat.update as Slack does for a bot: only a message
// the app posted (with chat.postMessage) can be changed; the post keeps its
// place and takes the new text (Post.Text, Post.Edits), and the change is
// recorded (Updates).
func (s *Server) updateMessage(r *http.Request) any {
	channel, ts, text := r.FormValue("channel"), r.FormValue("ts"), r.FormValue("text")
	switch {
	case channel == "":
		return fail("channel_not_found")
	case ts == "":
		return fail("message_not_found")
	case text == "" && r.FormValue("blocks") == "" && r.FormValue("attachments") == "":
		return fail("no_text")
	case utf8.RuneCountInString(text) > MaxTextLength:
		return fail("msg_too_long")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.posts {
		p := &s.posts[i]
		if p.Method != "chat.postMessage" || p.Channel != channel || p.TS != ts {
			continue
		}
		p.Text = text
		p.Edits++
		s.updates = append(s.updates, Update{Channel: channel, TS: ts, Text: text, At: time.Now()})
		s.changedLocked()
		return map[string]any{"ok": true, "channel": channel, "ts": ts, "text": text}
	}
	return fail("message_not_found")
}

// Updates returns the chat.update changes so far, in order.
func (s *Server) Updates() []Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Update(nil), s.updates...)
}

// WaitUpdates waits until at least n changes were made with chat.update
// and returns them all.
func (s *Server) WaitUpdates(ctx context.Context, n int) ([]Update, error) {
	var ups []Update
	err := s.WaitFor(ctx, func() bool { ups = s.Updates(); return len(ups) >= n })
	return ups, err
}
