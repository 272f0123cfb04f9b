package xmpp_test

import (
	"context"
	"encoding/xml"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/xmpp"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/ejabberdtest"
	"github.com/microbot/microbot/internal/prosodytest"
	"github.com/microbot/microbot/internal/testenv"
)

// freezer is a TCP proxy to a server that can be frozen: it then forwards
// nothing to the server and keeps every connection open, as a bot stopped
// with SIGSTOP (or a host that vanished) does, so the server keeps the
// session of whoever was connected through it. What the server sends
// meanwhile is read at the drain rate and dropped (a socket that takes
// data slowly, then not at all past its buffers, when the rate is 0).
type freezer struct {
	ln     net.Listener
	target string
	drain  int // bytes per second read from the server while frozen

	mu     sync.Mutex
	frozen bool
	done   chan struct{}
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string, drain int) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, drain: drain, done: make(chan struct{})}
	t.Cleanup(f.close)
	go f.serve()
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", f.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, s)
		f.mu.Unlock()
		go f.pipe(s, c, false)
		go f.pipe(c, s, true)
	}
}

func (f *freezer) isFrozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen
}

// pipe copies from src to dst until src ends. Frozen, it forwards nothing:
// towards the server it stops reading; from the server it reads at the
// drain rate and drops what it reads.
func (f *freezer) pipe(dst, src net.Conn, fromServer bool) {
	buf := make([]byte, 32<<10)
	for {
		if f.isFrozen() {
			if !fromServer || f.drain == 0 {
				<-f.done
				return
			}
			n, err := src.Read(buf[:min(len(buf), f.drain/10+1)])
			if err != nil {
				<-f.done
				return
			}
			select {
			case <-time.After(time.Duration(n) * time.Second / time.Duration(f.drain)):
			case <-f.done:
				return
			}
			continue
		}
		n, err := src.Read(buf)
		if n > 0 && !f.isFrozen() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if f.isFrozen() {
				continue // the end is not passed on either
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// freeze stops all forwarding, for good; the connections stay open.
func (f *freezer) freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

func (f *freezer) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	for _, c := range f.conns {
		_ = c.Close()
	}
}

func ejabberdConfig(srv *ejabberdtest.Server, server string, rooms ...string) xmpp.Config {
	return xmpp.Config{
		JID:      ejabberdtest.JID("bot"),
		Password: "bot-pw",
		Nick:     "microbot",
		Rooms:    rooms,
		Server:   server,
		CAFile:   srv.CAFile,
	}
}

// A bot that logs in while the server still holds its previous session (the
// old instance frozen, or its own half-open connection) is put back in its
// rooms: ejabberd replaces the old session ("Replaced by new connection")
// and processes the old session's exit from the room after the new one
// joined, which removes the bot; it joins again by itself (issue 15,
// item 11). It logs the SASL mechanism it logged in with.
func TestEjabberdReplacedSessionRejoins(t *testing.T) {
	t.Parallel()
	srv := ejabberdtest.Start(t)
	srv.Register("bot", "bot-pw")
	ops := ejabberdtest.Room("ops")
	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Join(ops, "alice")

	// The first instance connects through a proxy that then freezes. The
	// server has much to send it (alice's messages to it): its session's
	// process is busy writing them, slowly, when the new login replaces it,
	// so the old session leaves the room a few seconds after the new one
	// joined — as the session of a stopped process often does.
	proxy := newFreezer(t, srv.Addr, 1<<20)
	old := startBot(t, ejabberdConfig(srv, proxy.addr(), ops))
	alice.ExpectOccupant(ops, "microbot")
	proxy.freeze()
	_ = old.conn.Close() // it never reaches the server: the session stays
	big := strings.Repeat("x", 200<<10)
	for range 40 {
		alice.Say(ejabberdtest.JID("bot")+"/microbot", xmppclient.MessageChat, big)
	}

	// The new instance logs in directly, as the same full JID.
	var logs testenv.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := startBot(t, ejabberdConfig(srv, srv.Addr, ops), xmpp.WithLogger(logger))
	// ejabberd's room sees the old session leave after the new one joined:
	// the bot is removed from the room, then comes back.
	left := false
	alice.Expect("the bot removed from the room and back", func(s xmppclient.Stanza) bool {
		p, ok := s.(*xmppclient.Presence)
		if !ok || p.From != ops+"/microbot" {
			return false
		}
		if p.Type == xmppclient.PresenceUnavailable {
			left = true
		}
		return left && p.Type == xmppclient.PresenceAvailable
	})
	if !strings.Contains(logs.String(), "joining it again") {
		t.Errorf("the bot did not log its rejoin:\n%s", logs.String())
	}

	alice.Say(ops, xmppclient.MessageGroupchat, "microbot: ping")
	ev := b.recv(t)
	for ev.Direct { // what alice sent the old session may come to this one
		ev = b.recv(t)
	}
	if ev.Text != "ping" || ev.Room != ops {
		t.Fatalf("event %+v", ev)
	}
	b.reply(t, ev, "pong", input.Plain)
	if m := alice.ExpectMessage(ops + "/microbot"); m.Body != "pong" {
		t.Errorf("room got %q", m.Body)
	}
	if !strings.Contains(logs.String(), "mechanism=SCRAM-SHA-") {
		t.Errorf("the SASL mechanism is not logged:\n%s", logs.String())
	}
}

// The same bot talks to ejabberd as to prosody: direct messages and a
// room, over STARTTLS with SCRAM.
func TestEjabberdBasics(t *testing.T) {
	t.Parallel()
	srv := ejabberdtest.Start(t)
	srv.Register("bot", "bot-pw")
	ops := ejabberdtest.Room("ops")
	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Join(ops, "alice")
	b := startBot(t, ejabberdConfig(srv, srv.Addr, ops))
	alice.ExpectOccupant(ops, "microbot")

	alice.Say(ejabberdtest.JID("bot"), xmppclient.MessageChat, "list services")
	ev := b.recv(t)
	if ev.Text != "list services" || !ev.Direct || ev.UserID != "alice@localhost" {
		t.Fatalf("event %+v", ev)
	}
	b.reply(t, ev, tricky, input.Plain)
	if m := alice.ExpectMessage(ejabberdtest.JID("bot")); m.Body != tricky {
		t.Errorf("alice got %q", m.Body)
	}
	alice.Say(ops, xmppclient.MessageGroupchat, "microbot: health")
	ev = b.recv(t)
	if ev.Text != "health" || ev.Direct || ev.Room != ops || ev.UserID != "alice@localhost" {
		t.Fatalf("room event %+v", ev)
	}
	b.reply(t, ev, "ok", input.Plain)
	if m := alice.ExpectMessage(ops + "/microbot"); m.Body != "ok" {
		t.Errorf("room got %q", m.Body)
	}
}

// A kick is the room's decision: the bot does not join again by itself
// (it does on its next connection).
func TestEjabberdKickedStaysOut(t *testing.T) {
	t.Parallel()
	srv := ejabberdtest.Start(t)
	srv.Register("bot", "bot-pw")
	ops := ejabberdtest.Room("ops")
	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Join(ops, "alice") // the room's creator: its owner
	var logs testenv.Buffer
	startBot(t, ejabberdConfig(srv, srv.Addr, ops), xmpp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	alice.ExpectOccupant(ops, "microbot")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	res, err := alice.Client().SendIQ(ctx, &xmppclient.IQ{Type: xmppclient.IQSet, To: ops,
		Payload: &xmppclient.Element{XMLName: xml.Name{Space: "http://jabber.org/protocol/muc#admin", Local: "query"},
			Children: []xmppclient.Element{{XMLName: xml.Name{Space: "http://jabber.org/protocol/muc#admin", Local: "item"},
				Attrs: []xml.Attr{{Name: xml.Name{Local: "nick"}, Value: "microbot"}, {Name: xml.Name{Local: "role"}, Value: "none"}}}}}})
	if err != nil || res.Type != xmppclient.IQResult {
		t.Fatalf("kick: %+v, %v", res, err)
	}
	testenv.Eventually(t, wait, "the bot's removal logged", func() bool { return strings.Contains(logs.String(), "removed from room") })
	if !strings.Contains(logs.String(), "removed from room by its admins") || !strings.Contains(logs.String(), "kicked=true") ||
		strings.Contains(logs.String(), "joining it again") {
		t.Errorf("log:\n%s", logs.String())
	}
}
