package slack_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/slack"
	"github.com/microbot/microbot/input/slack/slacktestws"
)

// wait bounds every wait of these tests: generous, for a loaded machine.
const wait = 20 * time.Second

// harness is a fake Slack and the input connected to it, driven through
// the public API as the bot drives it.
type harness struct {
	t    testing.TB
	srv  *slacktestws.Server
	in   *slack.Input
	conn input.Conn
}

func newHarness(t testing.TB, opts ...slack.Option) *harness {
	t.Helper()
	srv := slacktestws.New(
		slacktestws.WithUser("U1", "Ada"),
		slacktestws.WithUser("U2", "Grace"),
		slacktestws.WithPingInterval(500*time.Millisecond),
	)
	t.Cleanup(srv.Close)
	in, err := slack.New(slack.Config{AppToken: srv.AppToken, BotToken: srv.BotToken, APIURL: srv.APIURL()},
		append([]slack.Option{slack.WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &harness{t: t, srv: srv, in: in}
	h.stream()
	if err := srv.WaitConnections(h.ctx(), 1); err != nil {
		t.Fatal(err)
	}
	return h
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	h.t.Cleanup(cancel)
	return ctx
}

// stream opens a connection, as the bot does at start and after Recv fails.
func (h *harness) stream() {
	h.t.Helper()
	c, err := h.in.Stream(h.ctx())
	if err != nil {
		h.t.Fatalf("Stream: %v", err)
	}
	h.conn = c
	h.t.Cleanup(func() { _ = c.Close() })
}

func (h *harness) recv() *input.Event {
	h.t.Helper()
	ev, err := h.conn.Recv(h.ctx())
	if err != nil {
		h.t.Fatalf("Recv: %v", err)
	}
	return ev
}

func (h *harness) send(ev *input.Event, text string, format input.Format) {
	h.t.Helper()
	if err := h.conn.Send(h.ctx(), ev, &input.Reply{Text: text, Format: format}); err != nil {
		h.t.Fatalf("Send: %v", err)
	}
}

func (h *harness) posts(n int) []slacktestws.Post {
	h.t.Helper()
	posts, err := h.srv.WaitPosts(h.ctx(), n)
	if err != nil {
		h.t.Fatalf("waiting for %d posts (have %d): %v", n, len(h.srv.Posts()), err)
	}
	return posts
}

func (h *harness) mention(m slacktestws.Message) slacktestws.Delivery {
	h.t.Helper()
	d, err := h.srv.Mention(h.ctx(), m)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) dm(m slacktestws.Message) slacktestws.Delivery {
	h.t.Helper()
	d, err := h.srv.DirectMessage(h.ctx(), m)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) waitAck(d slacktestws.Delivery) {
	h.t.Helper()
	if err := h.srv.WaitAck(h.ctx(), d.EnvelopeID); err != nil {
		h.t.Fatalf("envelope %s not acked: %v", d.EnvelopeID, err)
	}
}

// unescape undoes Slack's escaping of a posted text.
func unescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

func TestChannelMentionAnsweredInThread(t *testing.T) {
	h := newHarness(t)
	d := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + h.srv.BotUserID + "> list services"})
	ev := h.recv()
	h.waitAck(d)
	want := input.Event{Input: "slack", UserID: "U1", UserName: "Ada", Room: "C1", Thread: d.TS, Direct: false, Addressed: true, Text: "list services"}
	if got := *ev; got.Input != want.Input || got.UserID != want.UserID || got.UserName != want.UserName || got.Room != want.Room ||
		got.Thread != want.Thread || got.Direct != want.Direct || got.Addressed != want.Addressed || got.Text != want.Text {
		t.Fatalf("event = %+v\nwant    %+v", got, want)
	}
	if ev.Meta[slack.MetaKind] != slack.KindMention {
		t.Errorf("kind = %q", ev.Meta[slack.MetaKind])
	}

	h.send(ev, "go.micro.srv.greeter\ngo.micro.bot.echo", input.Code)
	p := h.posts(1)[0]
	if p.Method != "chat.postMessage" || p.Channel != "C1" || p.ThreadTS != d.TS {
		t.Fatalf("reply %+v: want chat.postMessage in C1, thread %s", p, d.TS)
	}
	if p.Text != "```\ngo.micro.srv.greeter\ngo.micro.bot.echo\n```" {
		t.Fatalf("reply text %q: want a code block", p.Text)
	}

	// A mention inside a thread is answered in that thread.
	d = h.mention(slacktestws.Message{Channel: "C1", User: "U2", Text: "<@" + h.srv.BotUserID + ">: ping", ThreadTS: "1600000000.000100"})
	ev = h.recv()
	if ev.Thread != "1600000000.000100" || ev.Text != "ping" || ev.UserName != "Grace" {
		t.Fatalf("event in a thread = %+v", ev)
	}
	h.send(ev, "pong <3 & more", input.Plain)
	p = h.posts(2)[1]
	if p.ThreadTS != "1600000000.000100" || p.Text != "pong &lt;3 &amp; more" {
		t.Fatalf("reply %+v: want the thread and & < > escaped", p)
	}
}

func TestDirectMessageAnswered(t *testing.T) {
	h := newHarness(t)
	d := h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: "list services"})
	ev := h.recv()
	h.waitAck(d)
	if ev.Room != "D1" || !ev.Direct || !ev.Addressed || ev.Thread != "" || ev.Text != "list services" || ev.UserID != "U1" {
		t.Fatalf("event = %+v", ev)
	}
	if ev.Meta[slack.MetaKind] != slack.KindDirect {
		t.Errorf("kind = %q", ev.Meta[slack.MetaKind])
	}
	h.send(ev, "hello", input.Plain)
	if p := h.posts(1)[0]; p.Channel != "D1" || p.ThreadTS != "" || p.Text != "hello" {
		t.Fatalf("reply %+v: want it in the conversation, not a thread", p)
	}

	// A direct message in a thread is answered in the thread; a mention of
	// the bot in it is stripped too.
	h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: "<@" + h.srv.BotUserID + "> time", ThreadTS: "1600000000.000200"})
	ev = h.recv()
	if ev.Thread != "1600000000.000200" || ev.Text != "time" {
		t.Fatalf("event = %+v", ev)
	}
	h.send(ev, "now", input.Plain)
	if p := h.posts(2)[1]; p.Channel != "D1" || p.ThreadTS != "1600000000.000200" {
		t.Fatalf("reply %+v: want the thread", p)
	}
}

func TestSlashCommandAnswered(t *testing.T) {
	h := newHarness(t)
	d, err := h.srv.SlashCommand(h.ctx(), slacktestws.SlashCommand{
		Text: "list services", Channel: "C2", ChannelName: "ops", User: "U2", UserName: "grace",
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := h.recv()
	h.waitAck(d)
	if ev.Text != "list services" || ev.UserID != "U2" || ev.UserName != "Grace" || ev.Room != "C2" || !ev.Addressed || ev.Direct {
		t.Fatalf("event = %+v", ev)
	}
	if ev.Meta[slack.MetaKind] != slack.KindSlash {
		t.Errorf("kind = %q", ev.Meta[slack.MetaKind])
	}
	h.send(ev, `{"a": 1}`, input.Code)
	p := h.posts(1)[0]
	if p.Method != slacktestws.MethodResponseURL || p.Channel != "C2" || p.ResponseType != "in_channel" || p.Text != "```\n{\"a\": 1}\n```" {
		t.Fatalf("reply %+v: want an in_channel response through the response_url", p)
	}

	// A response_url that no longer works (expired): the answer goes to the
	// channel instead.
	_, err = h.srv.SlashCommand(h.ctx(), slacktestws.SlashCommand{
		Text: "ping", Channel: "C2", User: "U1", ResponseURL: h.srv.APIURL() + "response/expired",
	})
	if err != nil {
		t.Fatal(err)
	}
	ev = h.recv()
	h.send(ev, "pong", input.Plain)
	if p := h.posts(2)[1]; p.Method != "chat.postMessage" || p.Channel != "C2" || p.Text != "pong" {
		t.Fatalf("reply %+v: want chat.postMessage to C2", p)
	}
}

func TestLongSlashCommandReply(t *testing.T) {
	h := newHarness(t)
	h.srv.NotInChannel("C3")
	text := bigText(20 * 1024) // 6 parts: more than a response_url takes
	for _, ch := range []string{"C2", "C3"} {
		if _, err := h.srv.SlashCommand(h.ctx(), slacktestws.SlashCommand{Text: "dump", Channel: ch, User: "U1"}); err != nil {
			t.Fatal(err)
		}
		h.send(h.recv(), text, input.Code)
	}
	// In C2 the bot is a member: the reply is a file in the channel.
	files, err := h.srv.WaitFiles(h.ctx(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if f := files[0]; f.Channel != "C2" || f.ThreadTS != "" || string(f.Content) != text {
		t.Fatalf("file in %s thread %q, %d bytes: want the whole reply in C2", f.Channel, f.ThreadTS, len(f.Content))
	}
	// In C3 it is not: the person is told why, through the response_url.
	p := h.posts(1)[0]
	if p.Method != slacktestws.MethodResponseURL || p.Channel != "C3" || !strings.Contains(p.Text, "too long for a slash command") {
		t.Fatalf("post %+v: want a notice in C3 through the response_url", p)
	}
}

func TestDuplicateDeliveryAnsweredOnce(t *testing.T) {
	h := newHarness(t)
	bot := "<@" + h.srv.BotUserID + "> "
	first := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: bot + "deploy", EventID: "Ev0DUP"})
	ev := h.recv()
	h.send(ev, "deployed", input.Plain)

	// Slack retries the same event (its ack "got lost"), and sends one DM
	// both as message.im and as app_mention.
	retry := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: bot + "deploy", TS: first.TS, EventID: "Ev0DUP", RetryAttempt: 1})
	dm := h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: bot + "status"})
	dmAgain := h.mention(slacktestws.Message{Channel: "D1", User: "U1", Text: bot + "status", TS: dm.TS})
	marker := h.dm(slacktestws.Message{Channel: "D1", User: "U2", Text: "marker"})

	h.waitAck(retry) // a repeat of a message the bot has: acked at once
	if ev := h.recv(); ev.Text != "status" {
		t.Fatalf("after the retry, Recv gave %q, want the DM", ev.Text)
	}
	if ev := h.recv(); ev.Text != "marker" {
		t.Fatalf("Recv gave %q, want the marker: a repeat got through", ev.Text)
	}
	for _, d := range []slacktestws.Delivery{retry, dm, dmAgain, marker} {
		h.waitAck(d) // every envelope is acked, repeated or not
	}
	if n := len(h.srv.Posts()); n != 1 {
		t.Fatalf("%d replies, want 1", n)
	}
}

// A message that arrives while the bot no longer reads (it is shutting
// down: running commands drain, then the connection closes) must not be
// acked: Slack then delivers it again to the next connection, where it is
// answered, instead of being lost.
func TestMessageNotTakenIsNotAcked(t *testing.T) {
	h := newHarness(t)
	lost := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + h.srv.BotUserID + "> deploy", EventID: "Ev0LOST"})
	// Nobody calls Recv. An envelope with nothing for the bot is still
	// acked at once; once it is, the one before it was read too.
	after := h.dm(slacktestws.Message{Channel: "D1", User: h.srv.BotUserID, Text: "my own reply"})
	h.waitAck(after)
	if n := h.srv.Acked(lost.EnvelopeID); n != 0 {
		t.Fatalf("the message nobody took was acked %d times", n)
	}
	if err := h.conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.WaitFor(h.ctx(), func() bool { return h.srv.Live() == 0 }); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.Acked(lost.EnvelopeID); n != 0 {
		t.Fatalf("the message nobody took was acked %d times by Close", n)
	}

	// Slack sends it again, on the next connection: the bot gets it (the
	// dedup cache does not take it for a repeat), once, and it is acked.
	h.stream()
	if err := h.srv.WaitConnections(h.ctx(), 2); err != nil {
		t.Fatal(err)
	}
	again := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + h.srv.BotUserID + "> deploy", TS: lost.TS, EventID: "Ev0LOST", RetryAttempt: 1})
	if ev := h.recv(); ev.Text != "deploy" || ev.Meta[slack.MetaTS] != lost.TS {
		t.Fatalf("Recv gave %+v, want the message sent again", ev)
	}
	h.waitAck(again)
	for _, a := range h.srv.Acks() {
		if a.EnvelopeID == again.EnvelopeID && a.Connection != 2 {
			t.Errorf("acked on connection %d, want 2", a.Connection)
		}
	}
	// And once only: a further repeat is acked at once and dropped.
	third := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + h.srv.BotUserID + "> deploy", TS: lost.TS, EventID: "Ev0LOST", RetryAttempt: 2})
	h.waitAck(third)
	h.dm(slacktestws.Message{Channel: "D1", User: "U2", Text: "marker"})
	if ev := h.recv(); ev.Text != "marker" {
		t.Fatalf("Recv gave %q, want the marker: a repeat got through", ev.Text)
	}
}

// While the bot reads, as its loop does all the time, every envelope is
// acked: those with a message as Recv returns it, the others at once.
func TestEveryEnvelopeAckedWhileReading(t *testing.T) {
	h := newHarness(t)
	got := make(chan string, 100)
	go func() {
		for {
			ev, err := h.conn.Recv(context.Background())
			if err != nil {
				close(got)
				return
			}
			got <- ev.Text
		}
	}()
	bot := "<@" + h.srv.BotUserID + "> "
	var ds []slacktestws.Delivery
	var want []string
	for i := range 10 {
		text := fmt.Sprintf("m%d", i)
		m := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: bot + text})
		ds = append(ds, m,
			h.dm(slacktestws.Message{Channel: "D1", User: "U2", Text: "d" + text}),
			h.dm(slacktestws.Message{Channel: "D1", User: "U3", BotID: "B0OTHER", Text: "from a bot"}),
			h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: bot + text, TS: m.TS, EventID: m.EventID, RetryAttempt: 1}))
		want = append(want, text, "d"+text)
	}
	for _, d := range ds {
		h.waitAck(d)
	}
	for i, w := range want {
		select {
		case text := <-got:
			if text != w {
				t.Fatalf("message %d = %q, want %q", i, text, w)
			}
		case <-time.After(wait):
			t.Fatalf("message %d (%q) never came", i, w)
		}
	}
	for _, a := range h.srv.Acks() {
		if a.Connection != 1 {
			t.Errorf("ack of %s on connection %d", a.EnvelopeID, a.Connection)
		}
	}
	if n := len(h.srv.Acks()); n != len(ds) {
		t.Errorf("%d acks for %d envelopes", n, len(ds))
	}
}

func TestBotsOwnAndOthersMessagesIgnored(t *testing.T) {
	h := newHarness(t)
	bot := h.srv.BotUserID
	ignored := []slacktestws.Message{
		{Channel: "D1", User: bot, Text: "my own reply"},
		{Channel: "D1", User: "U3", BotID: "B0OTHER", Text: "another bot"},
		{Channel: "D1", BotID: "B0OTHER", SubType: "bot_message", Text: "a bot_message"},
		{Channel: "D1", User: "U1", SubType: "message_changed", Text: "an edit"},
		{Channel: "D1", User: "U1", SubType: "message_deleted"},
		{Channel: "D1", User: "U1", SubType: "channel_join", Text: "joined"},
	}
	var ds []slacktestws.Delivery
	for _, m := range ignored {
		ds = append(ds, h.dm(m))
	}
	ds = append(ds, h.mention(slacktestws.Message{Channel: "C1", User: bot, Text: "<@" + bot + "> talking to myself"}))
	ds = append(ds, h.mention(slacktestws.Message{Channel: "C1", User: "U3", BotID: "B0OTHER", Text: "<@" + bot + "> from a bot"}))
	d, err := h.srv.ChannelMessage(h.ctx(), slacktestws.Message{Channel: "C1", User: "U1", Text: "chatter not for the bot"})
	if err != nil {
		t.Fatal(err)
	}
	ds = append(ds, d)
	for _, d := range ds {
		h.waitAck(d) // ignored: acked at once, before any Recv
	}
	marker := h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: "marker"})
	if ev := h.recv(); ev.Text != "marker" {
		t.Fatalf("Recv gave %q from %s: want the marker, all before it ignored", ev.Text, ev.UserID)
	}
	h.waitAck(marker)
}

func TestTextReachesTheEventAsTyped(t *testing.T) {
	h := newHarness(t)
	bot := "<@" + h.srv.BotUserID + ">"
	tests := []struct{ name, sent, want string }{
		{"json with escapes and a link", bot + ` query svc M {"url": "<http://x>", "q": "a &amp;&amp; b &lt;c&gt;"}`,
			`query svc M {"url": "http://x", "q": "a && b <c>"}`},
		{"link labelled as typed", bot + " get service <http://go.micro.srv|go.micro.srv>", "get service go.micro.srv"},
		{"mailto", bot + ", echo <mailto:a@b.io|a@b.io>", "echo a@b.io"},
		{"user and channel references", bot + ": echo <@U2> in <#C9|general>", "echo @Grace in #general"},
		{"mention not at the start", "hey " + bot + " help", "hey @microbot help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: tt.sent})
			if ev := h.recv(); ev.Text != tt.want {
				t.Errorf("Text = %q\nwant   %q", ev.Text, tt.want)
			}
		})
	}
	// Names come from users.info, once per user.
	if n := h.srv.UserLookups("U2"); n != 1 {
		t.Errorf("users.info asked %d times about U2, want 1 (cached)", n)
	}
}

func TestRateLimitedReplyRetriedAfterRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: "ping"})
	ev := h.recv()
	h.srv.RateLimit("chat.postMessage", 1, time.Second)
	h.send(ev, "pong", input.Plain)
	posts := h.posts(1)
	if len(posts) != 1 || posts[0].Text != "pong" {
		t.Fatalf("posts = %+v, want the one reply", posts)
	}
	calls := h.srv.Calls("chat.postMessage")
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("calls = %+v, want a 429 then a success", calls)
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < 900*time.Millisecond {
		t.Fatalf("retried %s after the 429, before the Retry-After of 1s", gap)
	}
}

func TestRateLimitWaitIsBounded(t *testing.T) {
	h := newHarness(t, slack.WithRateLimitWait(time.Second))
	h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: "ping"})
	ev := h.recv()
	h.srv.RateLimit("chat.postMessage", 1, time.Hour)
	err := h.conn.Send(h.ctx(), ev, &input.Reply{Text: "pong"})
	if rl, ok := errors.AsType[*slackapi.RateLimitedError](err); !ok || rl.RetryAfter != time.Hour {
		t.Fatalf("Send = %v, want the rate limit error without waiting an hour", err)
	}
	if len(h.srv.Posts()) != 0 {
		t.Fatal("something was posted")
	}
}

func TestReconnects(t *testing.T) {
	tests := []struct {
		name string
		cut  func(*slacktestws.Server) error
	}{
		{"disconnect envelope", func(s *slacktestws.Server) error { return s.Disconnect("refresh_requested") }},
		{"dropped socket", func(s *slacktestws.Server) error {
			if s.DropConnections() != 1 {
				return errors.New("no socket to drop")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: "one"})
			h.send(h.recv(), "first", input.Plain)
			if !h.in.Connected() {
				t.Fatal("Connected() false on a live connection")
			}

			if err := tt.cut(h.srv); err != nil {
				t.Fatal(err)
			}
			_, err := h.conn.Recv(h.ctx())
			if !errors.Is(err, slack.ErrConnectionLost) {
				t.Fatalf("Recv after the break = %v, want ErrConnectionLost", err)
			}
			if h.in.Connected() {
				t.Fatal("Connected() true after the connection ended")
			}
			// Reconnecting is left to the bot: the input did not open
			// another socket by itself (no second backoff loop).
			if n := h.srv.Connections(); n != 1 {
				t.Fatalf("%d connections opened before the bot reconnected, want 1", n)
			}
			if n := len(h.srv.Calls("apps.connections.open")); n != 1 {
				t.Fatalf("apps.connections.open called %d times before the bot reconnected, want 1", n)
			}

			h.stream() // what the bot does, after its backoff
			if err := h.srv.WaitConnections(h.ctx(), 2); err != nil {
				t.Fatal(err)
			}
			if !h.in.Connected() {
				t.Fatal("Connected() false after reconnecting")
			}
			h.dm(slacktestws.Message{Channel: "D1", User: "U1", Text: "two"})
			ev := h.recv()
			if ev.Text != "two" {
				t.Fatalf("after reconnecting Recv gave %q", ev.Text)
			}
			h.send(ev, "second", input.Plain)
			if p := h.posts(2)[1]; p.Text != "second" {
				t.Fatalf("reply after reconnecting = %+v", p)
			}
		})
	}
}

// bigText is n bytes of numbered lines, with characters Slack escapes.
func bigText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("0123456789", i%7))
		b.WriteString(" <a & b>\n")
	}
	return strings.TrimSuffix(b.String()[:n], "\n")
}

func TestLongReplyDeliveredWhole(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		format input.Format
		file   bool
	}{
		{"30 KB plain, split", 30 * 1024, input.Plain, false},
		{"30 KB code, split", 30 * 1024, input.Code, false},
		{"100 KB, as a file", 100 * 1024, input.Code, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			d := h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + h.srv.BotUserID + "> dump"})
			ev := h.recv()
			text := bigText(tt.size)
			h.send(ev, text, tt.format)
			if tt.file {
				files, err := h.srv.WaitFiles(h.ctx(), 1)
				if err != nil {
					t.Fatal(err)
				}
				f := files[0]
				if string(f.Content) != text {
					t.Fatalf("file of %d bytes differs from the %d-byte reply", len(f.Content), len(text))
				}
				if f.Channel != "C1" || f.ThreadTS != d.TS {
					t.Fatalf("file shared in %s thread %q, want C1 thread %s", f.Channel, f.ThreadTS, d.TS)
				}
				if len(h.srv.Posts()) != 0 {
					t.Fatal("a file reply was also posted as messages")
				}
				return
			}
			// Every part is in the thread, under Slack's limit (the fake
			// rejects more than 40,000 characters), code parts are code
			// blocks, and together they are the reply.
			var posts []slacktestws.Post
			if err := h.srv.WaitFor(h.ctx(), func() bool {
				posts = h.srv.Posts()
				var got []string
				for _, p := range posts {
					got = append(got, unwrapPart(p.Text, tt.format))
				}
				return strings.Join(got, "\n") == text
			}); err != nil {
				t.Fatalf("the %d parts posted do not add up to the reply: %v", len(posts), err)
			}
			if len(posts) < 2 || len(posts) > slack.MaxParts {
				t.Fatalf("%d parts", len(posts))
			}
			for _, p := range posts {
				if p.ThreadTS != d.TS || len(p.Text) > 3*slack.PartSize {
					t.Fatalf("part in thread %q of %d bytes", p.ThreadTS, len(p.Text))
				}
			}
		})
	}
}

func unwrapPart(s string, format input.Format) string {
	s = unescape(s)
	if format == input.Code {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "```\n"), "\n```")
	}
	return s
}

func TestRepliesToOneChannelStayInOrder(t *testing.T) {
	h := newHarness(t)
	h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + h.srv.BotUserID + "> a"})
	ev := h.recv()

	// Reply A: three parts, the first rate-limited for a second. Replies
	// B, C, D are sent while A waits; none may overtake A or interleave.
	h.srv.RateLimit("chat.postMessage", 1, time.Second)
	partA := strings.Repeat("a", slack.PartSize-10)
	errs := make(chan error, 4)
	go func() {
		errs <- h.conn.Send(h.ctx(), ev, &input.Reply{Text: partA + "\n" + partA + "\n" + partA})
	}()
	if err := h.srv.WaitFor(h.ctx(), func() bool { return len(h.srv.Calls("chat.postMessage")) >= 1 }); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"b", "c", "d"} {
		go func() { errs <- h.conn.Send(h.ctx(), ev, &input.Reply{Text: text}) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	posts := h.posts(6)
	var got []string
	for _, p := range posts {
		got = append(got, p.Text[:1])
	}
	if strings.Join(got[:3], "") != "aaa" {
		t.Fatalf("order of replies %v: A's parts must come first, together", got)
	}
	if len(posts) != 6 {
		t.Fatalf("%d posts, want 6: %v", len(posts), got)
	}
}

func TestBadTokensRejectedByNew(t *testing.T) {
	const secret = "Zq9SECRETvalue"
	tests := []struct {
		name string
		cfg  slack.Config
		want string
	}{
		{"no tokens", slack.Config{}, "slack: no app-level token: set AppToken to the app's xapp-… token"},
		{"no bot token", slack.Config{AppToken: "xapp-1-A1-" + secret}, "no bot token"},
		{"tokens swapped", slack.Config{AppToken: "xoxb-1-" + secret, BotToken: "xapp-1-" + secret}, "AppToken holds a bot token"},
		{"user token as bot token", slack.Config{AppToken: "xapp-1-A1-" + secret, BotToken: "xoxp-1-" + secret}, "holds a user token"},
		{"garbage", slack.Config{AppToken: secret}, "not a Slack app-level token"},
		{"truncated", slack.Config{AppToken: "xapp-1-A1-" + secret, BotToken: "xoxb-"}, "malformed"},
		{"space inside", slack.Config{AppToken: "xapp-1-A1-" + secret, BotToken: "xoxb-" + secret + " x"}, "malformed"},
		{"bad api url", slack.Config{AppToken: "xapp-1-A1-" + secret, BotToken: "xoxb-1-" + secret, APIURL: "localhost:80"}, "APIURL must be an absolute http(s) URL"},
		{"named", slack.Config{Names: input.Names{"AppToken": "--slack_app_token"}}, "set --slack_app_token to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := slack.New(tt.cfg)
			if err == nil || in != nil {
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %q, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the token: %q", err)
			}
		})
	}
}

// BenchmarkRoundTrip measures one message through the input: a mention
// delivered over the socket, Recv, Send, and the reply posted.
func BenchmarkRoundTrip(b *testing.B) {
	h := newHarness(b, slack.WithLogger(slog.New(slog.DiscardHandler)))
	text := "<@" + h.srv.BotUserID + "> list services"
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.mention(slacktestws.Message{Channel: "C1", User: "U1", Text: text})
		h.send(h.recv(), "go.micro.srv.greeter", input.Code)
		if err := h.srv.WaitFor(h.ctx(), func() bool { return h.srv.PostCount() > i }); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRejectedTokensFailStream(t *testing.T) {
	srv := slacktestws.New()
	defer srv.Close()
	gone := slacktestws.New()
	goneURL := gone.APIURL()
	gone.Close()
	tests := []struct {
		name, app, bot string
		apiURL         string                    // default srv's
		setup          func(*slacktestws.Server) // then undone
		want           string
		permanent      bool
	}{
		{name: "unknown bot token", app: srv.AppToken, bot: "xoxb-1-revoked-token",
			want: "rejected the bot token (auth.test: invalid_auth)", permanent: true},
		{name: "unknown app token", app: "xapp-1-A1-revoked-token", bot: srv.BotToken,
			want: "refused to open the socket (apps.connections.open: invalid_auth)", permanent: true},
		{name: "bot token revoked", app: srv.AppToken, bot: srv.BotToken,
			setup: func(s *slacktestws.Server) { s.RevokeToken(s.BotToken, "token_revoked") },
			want:  "rejected the bot token (auth.test: token_revoked)", permanent: true},
		{name: "bot's account inactive", app: srv.AppToken, bot: srv.BotToken,
			setup: func(s *slacktestws.Server) { s.RevokeToken(s.BotToken, "account_inactive") },
			want:  "rejected the bot token (auth.test: account_inactive)", permanent: true},
		{name: "app token revoked", app: srv.AppToken, bot: srv.BotToken,
			setup: func(s *slacktestws.Server) { s.RevokeToken(s.AppToken, "token_revoked") },
			want:  "refused to open the socket (apps.connections.open: token_revoked)", permanent: true},
		{name: "app token without connections:write", app: srv.AppToken, bot: srv.BotToken,
			setup: func(s *slacktestws.Server) { s.RevokeToken(s.AppToken, "missing_scope") },
			want:  "refused to open the socket (apps.connections.open: missing_scope)", permanent: true},
		// Not the tokens' fault: worth retrying soon.
		{name: "Slack unreachable", app: srv.AppToken, bot: srv.BotToken, apiURL: goneURL,
			want: "auth.test", permanent: false},
		{name: "Slack busy", app: srv.AppToken, bot: srv.BotToken,
			setup: func(s *slacktestws.Server) { s.RateLimit("apps.connections.open", 1, time.Second) },
			want:  "Socket Mode connection lost", permanent: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(srv)
				defer srv.RevokeToken(srv.BotToken, "")
				defer srv.RevokeToken(srv.AppToken, "")
			}
			apiURL := tt.apiURL
			if apiURL == "" {
				apiURL = srv.APIURL()
			}
			in, err := slack.New(slack.Config{AppToken: tt.app, BotToken: tt.bot, APIURL: apiURL}, slack.WithLogger(testLogger(t)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := in.Stream(ctx)
			if err == nil {
				_ = c.Close()
				t.Fatal("Stream succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "revoked-token") || strings.Contains(err.Error(), srv.BotToken) {
				t.Fatalf("Stream = %q, want %q and no token", err, tt.want)
			}
			if got := errors.Is(err, input.ErrPermanent); got != tt.permanent {
				t.Fatalf("Stream = %q: permanent = %v, want %v", err, got, tt.permanent)
			}
			if in.Connected() {
				t.Fatal("Connected() after a failed Stream")
			}
		})
	}
}

func TestCloseEndsRecv(t *testing.T) {
	h := newHarness(t)
	errc := make(chan error, 1)
	go func() {
		_, err := h.conn.Recv(context.Background())
		errc <- err
	}()
	if err := h.conn.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, input.ErrClosed) {
			t.Fatalf("Recv after Close = %v, want ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("Recv still blocked after Close")
	}
	if err := h.conn.Send(h.ctx(), &input.Event{Room: "C1"}, &input.Reply{Text: "x"}); !errors.Is(err, input.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if h.in.Connected() {
		t.Fatal("Connected() after Close")
	}
}

func TestStatusReporter(t *testing.T) {
	if _, ok := input.Input(&slack.Input{}).(input.StatusReporter); !ok {
		t.Fatal("the slack input is not a StatusReporter")
	}
}
