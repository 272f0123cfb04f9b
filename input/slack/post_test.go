package slack_test

import (
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/slack"
	"github.com/microbot/microbot/input/slack/slacktestws"
)

// TestPost: a post is one message with an attachment: the severity as its
// colour, the title linked, the fields side by side (a long one on a row
// of its own), the source and time in the footer, Slack's escapes applied.
// Posted names the message and the thread it starts.
func TestPost(t *testing.T) {
	h := newHarness(t)
	when := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	posted, err := h.in.Post(h.ctx(), &input.Post{
		Room: "C1", Title: "Deploy <web> v2", Text: "started by alice & bob", Severity: input.SeverityWarning,
		Fields: []input.Field{{Name: "service", Value: "web"}, {Name: "version", Value: "v2"}, {Name: "why", Value: strings.Repeat("long ", 20)}},
		Link:   "https://ci.example.org/42", Source: "ci", Time: when,
	})
	if err != nil {
		t.Fatal(err)
	}
	posts := h.posts(1)
	p := posts[0]
	if posted.ID != p.TS || posted.Thread != p.TS || p.ThreadTS != "" || p.Channel != "C1" {
		t.Fatalf("Posted %+v for post %+v: want the message's ts as id and thread, at the top of C1", posted, p)
	}
	if len(p.Attachments) != 1 {
		t.Fatalf("post has %d attachments, want 1: %+v", len(p.Attachments), p)
	}
	a := p.Attachments[0]
	want := slackapi.Attachment{Color: "warning", Title: "Deploy &lt;web&gt; v2", TitleLink: "https://ci.example.org/42",
		Text: "started by alice &amp; bob", Footer: "ci", Fallback: "[WARNING] Deploy &lt;web&gt; v2"}
	if a.Color != want.Color || a.Title != want.Title || a.TitleLink != want.TitleLink || a.Text != want.Text ||
		a.Footer != want.Footer || a.Fallback != want.Fallback || a.Ts.String() != "1714564800" {
		t.Errorf("attachment %+v, want %+v and ts 1714564800", a, want)
	}
	if len(a.Fields) != 3 || !a.Fields[0].Short || !a.Fields[1].Short || a.Fields[2].Short ||
		a.Fields[0].Title != "service" || a.Fields[0].Value != "web" {
		t.Errorf("fields %+v: want service and version side by side, why on its own row", a.Fields)
	}

	// Given the thread, the next post goes in it.
	if _, err := h.in.Post(h.ctx(), &input.Post{Room: "C1", Thread: posted.Thread, Title: "Deploy finished", Severity: input.SeverityOK}); err != nil {
		t.Fatal(err)
	}
	if p := h.posts(2)[1]; p.ThreadTS != posted.Thread || p.Attachments[0].Color != "good" {
		t.Errorf("second post %+v: want it in thread %s, green", p, posted.Thread)
	}
}

// TestPostLongText: a long text is split as a reply is, the first part in
// the attachment and the rest after it in the same place; past 40 KB it
// comes as a file.
func TestPostLongText(t *testing.T) {
	t.Run("split", func(t *testing.T) {
		h := newHarness(t)
		text := bigText(20 * 1024)
		if _, err := h.in.Post(h.ctx(), &input.Post{Room: "C1", Thread: "1.000001", Title: "dump", Text: text, Format: input.Code}); err != nil {
			t.Fatal(err)
		}
		var posts []slacktestws.Post
		if err := h.srv.WaitFor(h.ctx(), func() bool {
			posts = h.srv.Posts()
			if len(posts) == 0 || len(posts[0].Attachments) != 1 {
				return false
			}
			got := []string{unwrapPart(posts[0].Attachments[0].Text, input.Code)}
			for _, p := range posts[1:] {
				got = append(got, unwrapPart(p.Text, input.Code))
			}
			return strings.Join(got, "\n") == text
		}); err != nil {
			t.Fatalf("the %d messages posted do not add up to the text: %v", len(posts), err)
		}
		for _, p := range posts {
			if p.ThreadTS != "1.000001" {
				t.Errorf("a part went to thread %q", p.ThreadTS)
			}
		}
	})
	t.Run("file", func(t *testing.T) {
		h := newHarness(t)
		text := bigText(100 * 1024)
		if _, err := h.in.Post(h.ctx(), &input.Post{Room: "C1", Title: "dump", Text: text}); err != nil {
			t.Fatal(err)
		}
		files, err := h.srv.WaitFiles(h.ctx(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if string(files[0].Content) != text || files[0].Channel != "C1" {
			t.Errorf("file %q in %s: not the text", files[0].Filename, files[0].Channel)
		}
		if a := h.posts(1)[0].Attachments; len(a) != 1 || !strings.Contains(a[0].Text, "comes as a file") {
			t.Errorf("attachment %+v: want the title and a word about the file", a)
		}
	})
}

// TestPostRateLimited: a 429 is waited out as for replies, and a post
// does not overtake a reply to the same channel.
func TestPostRateLimited(t *testing.T) {
	h := newHarness(t)
	h.srv.RateLimit("chat.postMessage", 1, time.Second)
	if _, err := h.in.Post(h.ctx(), &input.Post{Room: "C1", Text: "after the wait"}); err != nil {
		t.Fatal(err)
	}
	calls := h.srv.Calls("chat.postMessage")
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("calls = %+v, want a 429 then a success", calls)
	}
	h2 := newHarness(t, slack.WithRateLimitWait(time.Second))
	h2.srv.RateLimit("chat.postMessage", 1, time.Hour)
	if _, err := h2.in.Post(h2.ctx(), &input.Post{Room: "C1", Text: "x"}); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("Post = %v, want the rate limit error without waiting an hour", err)
	}
}
