package xmpp_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/xmpp"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/prosodytest"
)

// wait is the generous bound of every wait in these tests (a loaded 2-core
// machine can be slow; a healthy run takes a fraction of it).
const wait = 20 * time.Second

// dialCounter counts the bot's connection attempts.
type dialCounter struct{ n atomic.Int64 }

func (d *dialCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// bot is the input under test with its open connection.
type bot struct {
	in    *xmpp.Input
	conn  input.Conn
	dials *dialCounter
}

func botConfig(srv *prosodytest.Server, rooms ...string) xmpp.Config {
	return xmpp.Config{
		JID:      prosodytest.JID("bot"),
		Password: "bot-pw",
		Nick:     "microbot",
		Rooms:    rooms,
		Server:   srv.Addr,
		CAFile:   srv.CAFile,
	}
}

func fastOptions(d *dialCounter) []xmpp.Option {
	return []xmpp.Option{
		xmpp.WithLogger(slog.New(slog.DiscardHandler)),
		xmpp.WithBackoff(100*time.Millisecond, time.Second),
		xmpp.WithStableAfter(time.Minute),
		xmpp.WithClientOptions(xmppclient.WithDialer(d.dial)),
	}
}

// startBot configures and opens the input, and waits until it is connected.
func startBot(t *testing.T, cfg xmpp.Config, opts ...xmpp.Option) *bot {
	t.Helper()
	d := &dialCounter{}
	in, err := xmpp.New(cfg, append(fastOptions(d), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := in.Stream(ctx)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	b := &bot{in: in, conn: conn, dials: d}
	b.waitConnected(t, true)
	return b
}

func (b *bot) waitConnected(t *testing.T, want bool) {
	t.Helper()
	deadline := time.Now().Add(2 * wait)
	for b.in.Connected() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Connected() stayed %v", !want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bot) recv(t *testing.T) *input.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ev, err := b.conn.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return ev
}

func (b *bot) reply(t *testing.T, ev *input.Event, text string, format input.Format) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.conn.Send(ctx, ev, &input.Reply{Text: text, Format: format}); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

const tricky = `<services> & "more" ]]> </body></message><message to='x'> &amp; ]]&gt;`

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	alice := prosodytest.NewHuman(t, srv, "alice")
	b := startBot(t, botConfig(srv))

	alice.Say(prosodytest.JID("bot"), xmppclient.MessageChat, "list services")
	ev := b.recv(t)
	want := input.Event{Input: "xmpp", UserID: "alice@localhost", UserName: "alice", Room: "alice@localhost", Direct: true, Addressed: true, Text: "list services"}
	if ev.Input != want.Input || ev.UserID != want.UserID || ev.UserName != want.UserName || ev.Room != want.Room ||
		ev.Direct != want.Direct || ev.Addressed != want.Addressed || ev.Text != want.Text {
		t.Fatalf("event %+v, want %+v", ev, want)
	}
	b.reply(t, ev, tricky, input.Plain)
	m := alice.ExpectMessage(prosodytest.JID("bot"))
	if m.Body != tricky || m.Type != xmppclient.MessageChat {
		t.Errorf("alice got %q (%s), want %q", m.Body, m.Type, tricky)
	}

	// A leading nick in a direct message is stripped too; code is fenced.
	alice.Say(prosodytest.JID("bot"), "", "microbot: get service greeter")
	ev = b.recv(t)
	if ev.Text != "get service greeter" || !ev.Addressed {
		t.Errorf("event %+v", ev)
	}
	b.reply(t, ev, "NAME  VERSION\ngreeter  1.0", input.Code)
	if m := alice.ExpectMessage(prosodytest.JID("bot")); m.Body != "```\nNAME  VERSION\ngreeter  1.0\n```" {
		t.Errorf("code reply arrived as %q", m.Body)
	}

	// A long reply arrives in several messages that make up the text.
	var lines []string
	for i := range 4000 {
		lines = append(lines, strings.Repeat("<&>", 10)+" line "+string(rune('a'+i%26)))
	}
	long := strings.Join(lines, "\n")
	b.reply(t, ev, long, input.Plain)
	var got []string
	for n := 0; n < len(long); {
		m := alice.ExpectMessage(prosodytest.JID("bot"))
		got = append(got, m.Body)
		n += len(m.Body) + 1
	}
	if len(got) < 2 || strings.Join(got, "\n") != long {
		t.Errorf("long reply: %d parts that do not make up the text", len(got))
	}
}

func TestRooms(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	ops := prosodytest.Room("ops")
	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Join(ops, "alice")
	// Said before the bot came: history the bot must not act on.
	alice.Say(ops, xmppclient.MessageGroupchat, "microbot: deregister service everything")

	b := startBot(t, botConfig(srv, ops))
	alice.ExpectOccupant(ops, "microbot")

	alice.Say(ops, xmppclient.MessageGroupchat, "microbot: list services")
	ev := b.recv(t)
	if ev.Text != "list services" || !ev.Addressed || ev.Direct || ev.Room != ops || ev.UserID != "alice@localhost" || ev.UserName != "alice" {
		t.Fatalf("event %+v", ev)
	}
	b.reply(t, ev, tricky, input.Plain)
	m := alice.ExpectMessage(ops + "/microbot")
	if m.Body != tricky || m.Type != xmppclient.MessageGroupchat {
		t.Errorf("room got %q (%s)", m.Body, m.Type)
	}

	// Not addressed: delivered with Addressed false, text untouched. The
	// bot's own reply, reflected by the room, is not an event.
	tests := []struct {
		say       string
		addressed bool
		text      string
	}{
		{"hello everyone", false, "hello everyone"},
		{"@MicroBot ping", true, "ping"},
		{"microbot list services", true, "list services"},
		{"microbots are cool", false, "microbots are cool"},
	}
	for _, tt := range tests {
		alice.Say(ops, xmppclient.MessageGroupchat, tt.say)
		ev := b.recv(t)
		if ev.Addressed != tt.addressed || ev.Text != tt.text || ev.Room != ops {
			t.Errorf("%q: event %+v, want addressed=%v text=%q", tt.say, ev, tt.addressed, tt.text)
		}
	}

	// A private message from an occupant is direct; the reply goes back
	// through the room to that occupant.
	alice.Say(ops+"/microbot", xmppclient.MessageChat, "health greeter")
	ev = b.recv(t)
	if !ev.Direct || !ev.Addressed || ev.Text != "health greeter" || ev.UserID != "alice@localhost" || ev.Room != ops+"/alice" {
		t.Fatalf("private message event %+v", ev)
	}
	b.reply(t, ev, "ok", input.Plain)
	if m := alice.ExpectMessage(ops + "/microbot"); m.Body != "ok" || m.Type != xmppclient.MessageChat {
		t.Errorf("private reply %q (%s)", m.Body, m.Type)
	}
}

// TestPost: a post goes to a room of the bot's as a groupchat message and
// to a person as a chat message, plain text with its severity marker; a
// long one is split, its code fenced in every part.
func TestPost(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	ops := prosodytest.Room("ops")
	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Join(ops, "alice")

	d := &dialCounter{}
	in, err := xmpp.New(botConfig(srv, ops), fastOptions(d)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := in.Post(ctx, &input.Post{Room: ops, Text: "x"}); !errors.Is(err, input.ErrNotConnected) {
		t.Errorf("Post before Stream: %v, want ErrNotConnected", err)
	}
	conn, err := in.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	alice.ExpectOccupant(ops, "microbot")

	post := &input.Post{Room: ops, Title: "Deploy of web v2", Text: tricky, Severity: input.SeverityWarning,
		Fields: []input.Field{{Name: "service", Value: "web"}}, Source: "ci"}
	if posted, err := in.Post(ctx, post); err != nil || posted != (input.Posted{}) {
		t.Fatalf("Post = %+v, %v", posted, err)
	}
	want := "[WARNING] Deploy of web v2\n" + tricky + "\nservice: web\n— ci"
	if m := alice.ExpectMessage(ops + "/microbot"); m.Body != want || m.Type != xmppclient.MessageGroupchat {
		t.Errorf("room got %q (%s), want %q", m.Body, m.Type, want)
	}

	if _, err := in.Post(ctx, &input.Post{Room: "alice@localhost", Text: "{\"a\": 1}", Format: input.Code}); err != nil {
		t.Fatal(err)
	}
	if m := alice.ExpectMessage(prosodytest.JID("bot")); m.Body != "```\n{\"a\": 1}\n```" || m.Type != xmppclient.MessageChat {
		t.Errorf("alice got %q (%s)", m.Body, m.Type)
	}

	// Past one message: the head, the text in fenced parts, the tail.
	long := strings.Repeat(strings.Repeat("x", 99)+"\n", 1000) // 100 KB
	if _, err := in.Post(ctx, &input.Post{Room: ops, Title: "big", Text: long, Format: input.Code, Source: "ci"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != "— ci" {
		got = append(got, alice.ExpectMessage(ops+"/microbot").Body)
	}
	if len(got) < 4 || got[0] != "big" {
		t.Fatalf("long post came as %d messages, the first %.40q", len(got), got[0])
	}
	var text strings.Builder
	for _, part := range got[1 : len(got)-1] {
		inner, ok := strings.CutPrefix(part, "```\n")
		inner, ok2 := strings.CutSuffix(inner, "\n```")
		if !ok || !ok2 || len(part) > xmpp.MaxBodySize {
			t.Fatalf("part %.40q… (%d bytes) is not a fenced part of at most %d bytes", part, len(part), xmpp.MaxBodySize)
		}
		text.WriteString(inner + "\n")
	}
	if text.String() != long {
		t.Errorf("the parts do not add up to the text (%d bytes, want %d)", text.Len(), len(long))
	}

	conn.Close()
	if _, err := in.Post(ctx, post); !errors.Is(err, input.ErrNotConnected) {
		t.Errorf("Post after Close: %v, want ErrNotConnected", err)
	}
}

func TestRoomNickConflict(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	ops := prosodytest.Room("ops")
	mallory := prosodytest.NewHuman(t, srv, "mallory")
	mallory.Join(ops, "microbot") // takes the bot's nick first
	b := startBot(t, botConfig(srv, ops))
	mallory.ExpectOccupant(ops, "microbot_2")

	for _, say := range []string{"microbot: ping", "microbot_2: ping"} {
		mallory.Say(ops, xmppclient.MessageGroupchat, say)
		ev := b.recv(t)
		if !ev.Addressed || ev.Text != "ping" || ev.UserID != "mallory@localhost" {
			t.Errorf("%q: event %+v", say, ev)
		}
		b.reply(t, ev, "pong", input.Plain)
		if m := mallory.ExpectMessage(ops + "/microbot_2"); m.Body != "pong" {
			t.Errorf("reply %q", m.Body)
		}
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	ops := prosodytest.Room("ops")
	alice := prosodytest.NewHuman(t, srv, "alice")
	b := startBot(t, botConfig(srv, ops))
	if n := b.dials.n.Load(); n != 1 {
		t.Fatalf("%d dials to connect once", n)
	}

	srv.Stop()
	b.waitConnected(t, false)
	time.Sleep(2 * time.Second) // the server stays down a while
	srv.Start()
	b.waitConnected(t, true)
	// Backoff from 100 ms doubling to 1 s: a few attempts while the server
	// was down for about 2 s, nowhere near a storm.
	if n := b.dials.n.Load(); n < 2 || n > 15 {
		t.Errorf("%d dials across the restart", n)
	}

	alice.Connect()
	alice.Join(ops, "alice")
	alice.ExpectOccupant(ops, "microbot") // the bot joined the room again
	alice.Say(ops, xmppclient.MessageGroupchat, "microbot: ping")
	ev := b.recv(t)
	if ev.Text != "ping" || !ev.Addressed {
		t.Fatalf("event after restart %+v", ev)
	}
	b.reply(t, ev, "pong", input.Plain)
	if m := alice.ExpectMessage(ops + "/microbot"); m.Body != "pong" {
		t.Errorf("reply after restart %q", m.Body)
	}
	alice.Say(prosodytest.JID("bot"), xmppclient.MessageChat, "time")
	if ev := b.recv(t); ev.Text != "time" || !ev.Direct {
		t.Errorf("direct message after restart %+v", ev)
	}
}

func TestReconnectAfterDeadStream(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	b := startBot(t, botConfig(srv), xmpp.WithKeepalive(500*time.Millisecond, time.Second),
		xmpp.WithClientOptions(xmppclient.WithTimeout(3*time.Second)))

	srv.Pause() // the server vanishes: no FIN, no RST, just silence
	b.waitConnected(t, false)
	srv.Resume()
	b.waitConnected(t, true)

	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Say(prosodytest.JID("bot"), xmppclient.MessageChat, "ping")
	ev := b.recv(t)
	b.reply(t, ev, "pong", input.Plain)
	if m := alice.ExpectMessage(prosodytest.JID("bot")); m.Body != "pong" {
		t.Errorf("reply %q", m.Body)
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	d := &dialCounter{}
	cfg := botConfig(srv)
	cfg.Password = "not-the-password"
	in, err := xmpp.New(cfg, fastOptions(d)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err = in.Stream(ctx)
	if err == nil {
		t.Fatal("Stream with a wrong password succeeded")
	}
	if want := "xmpp: authentication failed for bot@localhost: not-authorized"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("error shows the password: %v", err)
	}
	var p interface{ Permanent() bool }
	if !errors.Is(err, xmpp.ErrPermanent) || !errors.As(err, &p) || !p.Permanent() {
		t.Errorf("error %v is not marked permanent", err)
	}
	if n := d.n.Load(); n != 1 {
		t.Errorf("%d connection attempts for one Stream", n)
	}
	if in.Connected() {
		t.Error("Connected() after a failed Stream")
	}
}

func TestPasswordRevokedWhileConnected(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	b := startBot(t, botConfig(srv))
	srv.Stop()
	srv.Unregister("bot")
	srv.Start()

	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	ev, err := b.conn.Recv(ctx)
	if err == nil {
		t.Fatalf("Recv returned %+v after the account was deleted", ev)
	}
	if !errors.Is(err, xmpp.ErrPermanent) || !strings.Contains(err.Error(), "authentication failed for bot@localhost") {
		t.Fatalf("Recv: %v, want a permanent authentication error", err)
	}
	n := b.dials.n.Load()
	time.Sleep(3 * time.Second) // no attempts after a permanent failure
	if m := b.dials.n.Load(); m != n || n > 15 {
		t.Errorf("dials: %d when Recv failed, %d three seconds later (want a few, then no more)", n, m)
	}
	if b.in.Connected() {
		t.Error("Connected() after a permanent failure")
	}
}

func TestCloseEndsRecvAndSend(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	b := startBot(t, botConfig(srv))
	errc := make(chan error, 1)
	go func() { _, err := b.conn.Recv(context.Background()); errc <- err }()
	if err := b.conn.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, input.ErrClosed) {
			t.Errorf("Recv after Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Close did not unblock Recv")
	}
	ev := &input.Event{Room: "alice@localhost", Direct: true}
	if err := b.conn.Send(context.Background(), ev, &input.Reply{Text: "hi"}); !errors.Is(err, input.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if b.in.Connected() {
		t.Error("Connected() after Close")
	}
	if err := b.conn.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestHipChat(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	jid, addr := xmpp.HipChatAccount("bot@localhost", srv.Addr)
	x, err := xmpp.NewHipChat(xmpp.Config{JID: jid, Password: "bot-pw", Server: addr, CAFile: srv.CAFile}, xmpp.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := x.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b := &bot{in: x, conn: conn}
	b.waitConnected(t, true)
	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Say("bot@localhost", xmppclient.MessageChat, "hello")
	ev := b.recv(t)
	if ev.Input != "xmpp" || ev.Text != "hello" { // one identity under both names
		t.Errorf("event %+v", ev)
	}
}

// BenchmarkRoundTrip measures one command's trip through a real prosody: a
// person's direct message becomes an Event, the reply reaches the person.
func BenchmarkRoundTrip(b *testing.B) {
	srv := prosodytest.Start(b)
	srv.Register("bot", "bot-pw")
	srv.Register("alice", "alice-pw")
	ctx := b.Context()
	d := &dialCounter{}
	in, err := xmpp.New(botConfig(srv), fastOptions(d)...)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := in.Stream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for !in.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	j, _ := xmppclient.ParseJID(prosodytest.JID("alice"))
	alice, err := xmppclient.Dial(ctx, j, "alice-pw", xmppclient.WithServer(srv.Addr),
		xmppclient.WithTLSConfig(srv.TLSConfig()), xmppclient.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer alice.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := alice.Send(ctx, &xmppclient.Message{To: "bot@localhost", Type: xmppclient.MessageChat, Body: "ping"}); err != nil {
			b.Fatal(err)
		}
		ev, err := conn.Recv(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := conn.Send(ctx, ev, &input.Reply{Text: "pong"}); err != nil {
			b.Fatal(err)
		}
		for {
			s, err := alice.Recv(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if m, ok := s.(*xmppclient.Message); ok && m.Body == "pong" {
				break
			}
		}
	}
}
