package prosodytest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/input/xmpp/xmppclient"
)

// Wait bounds every wait of a Human (generous: a loaded 2-core machine can
// be slow; a healthy run takes a fraction of it).
const Wait = 30 * time.Second

// Human is a person's XMPP client (input/xmpp/xmppclient) logged in to a
// test server with their own account, as user@Domain/laptop.
type Human struct {
	// Name is the account's user name; its password is Name+"-pw".
	Name string
	// OnStanza, when set, sees every stanza the human receives, in order,
	// before Expect matches it (for instance to count the bot's answers).
	OnStanza func(xmppclient.Stanza)

	t   testing.TB
	srv Host
	c   *xmppclient.Client
	// present holds the room occupants (room/nick) whose presence the
	// human has seen and who have not left since.
	present map[string]bool
}

// Host is a test XMPP server of Domain a Human can use: a prosody
// (*Server) or another one (internal/ejabberdtest).
type Host interface {
	// Register creates the account user@Domain with password.
	Register(user, password string)
	// ClientAddr returns the address clients connect to (STARTTLS).
	ClientAddr() string
	// TLSConfig returns a TLS configuration that trusts the server.
	TLSConfig() *tls.Config
}

// NewHuman registers name (password name-pw) on srv and logs them in
// (Connect).
func NewHuman(t testing.TB, srv Host, name string) *Human {
	t.Helper()
	srv.Register(name, name+"-pw")
	h := &Human{Name: name, t: t, srv: srv, present: map[string]bool{}}
	h.Connect()
	return h
}

// Connect (again) logs the human in, closing the previous client, and
// announces them (initial presence, reflected by the server).
func (h *Human) Connect() {
	h.t.Helper()
	j, err := xmppclient.ParseJID(JID(h.Name) + "/laptop")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	c, err := xmppclient.Dial(ctx, j, h.Name+"-pw", xmppclient.WithServer(h.srv.ClientAddr()),
		xmppclient.WithTLSConfig(h.srv.TLSConfig()), xmppclient.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		h.t.Fatalf("%s cannot log in: %v", h.Name, err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	if h.c != nil {
		_ = h.c.Close()
	}
	h.c = c
	clear(h.present)
	h.Send(&xmppclient.Presence{})
	h.Expect("own presence", func(s xmppclient.Stanza) bool {
		p, ok := s.(*xmppclient.Presence)
		return ok && p.From == c.JID().String()
	})
}

// Client returns the human's current client.
func (h *Human) Client() *xmppclient.Client { return h.c }

// Send sends s, failing the test on error.
func (h *Human) Send(s xmppclient.Stanza) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := h.c.Send(ctx, s); err != nil {
		h.t.Fatalf("%s: send: %v", h.Name, err)
	}
}

// Say sends a message of type typ with body to the JID to.
func (h *Human) Say(to, typ, body string) {
	h.t.Helper()
	h.Send(&xmppclient.Message{To: to, Type: typ, Body: body})
}

// Expect waits for a stanza that matches, skipping others (noting the room
// presences among them); what names it in the failure.
func (h *Human) Expect(what string, match func(xmppclient.Stanza) bool) xmppclient.Stanza {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	for {
		s, err := h.c.Recv(ctx)
		if err != nil {
			h.t.Fatalf("%s: waiting for %s: %v", h.Name, what, err)
		}
		if p, ok := s.(*xmppclient.Presence); ok && p.MUCUser != nil {
			h.present[p.From] = p.Type == xmppclient.PresenceAvailable
		}
		if h.OnStanza != nil {
			h.OnStanza(s)
		}
		if match(s) {
			return s
		}
	}
}

// ExpectMessage waits for a message with a body from `from` (a JID, or a
// bare JID matching any resource).
func (h *Human) ExpectMessage(from string) *xmppclient.Message {
	h.t.Helper()
	return h.Expect("a message from "+from, func(s xmppclient.Stanza) bool {
		m, ok := s.(*xmppclient.Message)
		return ok && m.Body != "" && (m.From == from || strings.HasPrefix(m.From, from+"/"))
	}).(*xmppclient.Message)
}

// Join enters room as nick and waits until the room confirms; an error
// presence from the room fails the test.
func (h *Human) Join(room, nick string) {
	h.t.Helper()
	h.Send(&xmppclient.Presence{To: room + "/" + nick, MUC: &xmppclient.MUC{}})
	h.Expect("joining "+room, func(s xmppclient.Stanza) bool {
		p, ok := s.(*xmppclient.Presence)
		if ok && p.Type == xmppclient.PresenceError && strings.HasPrefix(p.From, room) {
			h.t.Fatalf("%s cannot join %s: %v", h.Name, room, p.Error)
		}
		return ok && p.From == room+"/"+nick && p.MUCUser.HasStatus(xmppclient.StatusSelf)
	})
}

// ExpectOccupant waits until nick is present in room (returning at once if
// the human has already seen them arrive and not leave).
func (h *Human) ExpectOccupant(room, nick string) {
	h.t.Helper()
	occupant := room + "/" + nick
	if h.present[occupant] {
		return
	}
	h.Expect(nick+" in "+room, func(s xmppclient.Stanza) bool {
		p, ok := s.(*xmppclient.Presence)
		return ok && p.From == occupant && p.Type == xmppclient.PresenceAvailable
	})
}
