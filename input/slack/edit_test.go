package slack_test

import (
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/slack"
	"github.com/microbot/microbot/input/slack/slacktestws"
)

// TestEditable: the input is an input.Editor: a progress message is posted
// once in the thread of the command, then changed in place (a rate limit
// on chat.update waited out), then the answer follows as a reply of its
// own; a text too long for one message keeps its end.
func TestEditable(t *testing.T) {
	h := newHarness(t)
	ed, ok := h.conn.(input.Editor)
	if !ok {
		t.Fatalf("%T is no input.Editor", h.conn)
	}
	d := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + h.srv.BotUserID + "> deploy"})
	ev := h.recv()
	id, err := ed.SendEditable(h.ctx(), ev, &input.Reply{Text: "step 1/3 <a>", Progress: true})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.RateLimit("chat.update", 1, time.Second)
	if err := ed.Edit(h.ctx(), ev, id, &input.Reply{Text: "step 1/3 <a>\nstep 2/3", Progress: true}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("line\n", 2000) + "the last line"
	if err := ed.Edit(h.ctx(), ev, id, &input.Reply{Text: long, Progress: true}); err != nil {
		t.Fatal(err)
	}
	h.send(ev, "deployed", input.Plain)
	posts := h.posts(2)
	p := posts[0]
	if p.TS != id || p.ThreadTS != d.TS || p.Edits != 2 {
		t.Fatalf("progress post %+v: want ts %s in thread %s, edited twice", p, id, d.TS)
	}
	if len(p.Text) > slack.PartSize || !strings.HasPrefix(p.Text, "…\n") || !strings.HasSuffix(p.Text, "the last line") {
		t.Errorf("long progress text (%d bytes) = %.40q…%q: want its end, under %d bytes", len(p.Text), p.Text, p.Text[max(0, len(p.Text)-20):], slack.PartSize)
	}
	ups := h.srv.Updates()
	if len(ups) != 2 || ups[0].Text != "step 1/3 &lt;a&gt;\nstep 2/3" {
		t.Errorf("updates = %+v, want the escaped text first", ups)
	}
	if posts[1].Text != "deployed" || posts[1].ThreadTS != d.TS {
		t.Errorf("answer %+v, want it in the thread after the progress", posts[1])
	}
	if err := ed.Edit(h.ctx(), ev, "1.000000", &input.Reply{Text: "x"}); err == nil || !strings.Contains(err.Error(), "message_not_found") {
		t.Errorf("edit of an unknown message = %v, want message_not_found", err)
	}
}
