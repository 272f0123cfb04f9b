package xmpp

import (
	"log/slog"
	"testing"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
)

// testConn is a conn in the state serve leaves it in after joining
// ops@conference.localhost as "microbot", without a server.
func testConn(t *testing.T) (*conn, *room) {
	t.Helper()
	in, err := New(Config{JID: "bot@localhost", Password: "pw", Nick: "microbot", Rooms: []string{"ops@conference.localhost"}}, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(in)
	t.Cleanup(c.cancel)
	r := c.rooms[xmppclient.JID{Local: "ops", Domain: "conference.localhost"}]
	*r = room{jid: r.jid, nick: "microbot", joined: true, occupants: map[string]string{}}
	return c, r
}

func occupant(nick, realJID, typ string, codes ...string) *xmppclient.Presence {
	u := &xmppclient.MUCUser{Items: []xmppclient.MUCItem{{JID: realJID, Role: "participant"}}}
	for _, c := range codes {
		u.Statuses = append(u.Statuses, xmppclient.MUCStatus{Code: c})
	}
	return &xmppclient.Presence{From: "ops@conference.localhost/" + nick, Type: typ, MUCUser: u}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	c, r := testConn(t)
	// alice is in a room that shows real JIDs; eve's real JID is hidden.
	c.presence(t.Context(), nil, occupant("alice", "alice@localhost/phone", ""))
	c.presence(t.Context(), nil, occupant("eve", "", ""))
	groupchat := func(from, body string) *xmppclient.Message {
		return &xmppclient.Message{From: from, Type: xmppclient.MessageGroupchat, Body: body}
	}
	tests := []struct {
		name string
		msg  *xmppclient.Message
		want *input.Event // nil: dropped
	}{
		{"addressed in room", groupchat("ops@conference.localhost/alice", "microbot: list services"),
			&input.Event{UserID: "alice@localhost", UserName: "alice", Room: "ops@conference.localhost", Addressed: true, Text: "list services"}},
		{"not addressed", groupchat("ops@conference.localhost/alice", "lunch?"),
			&input.Event{UserID: "alice@localhost", UserName: "alice", Room: "ops@conference.localhost", Text: "lunch?"}},
		{"semi-anonymous occupant", groupchat("ops@conference.localhost/eve", "microbot ping"),
			&input.Event{UserID: "ops@conference.localhost/eve", UserName: "eve", Room: "ops@conference.localhost", Addressed: true, Text: "ping"}},
		{"own echo", groupchat("ops@conference.localhost/microbot", "pong"), nil},
		{"history", &xmppclient.Message{From: "ops@conference.localhost/alice", Type: xmppclient.MessageGroupchat, Body: "microbot: deregister service x",
			Delay: &xmppclient.Delay{Stamp: "2020-01-01T00:00:00Z"}}, nil},
		{"legacy history", &xmppclient.Message{From: "ops@conference.localhost/alice", Type: xmppclient.MessageGroupchat, Body: "microbot: x",
			LegacyDelay: &xmppclient.Delay{Stamp: "20200101T00:00:00"}}, nil},
		{"subject", &xmppclient.Message{From: "ops@conference.localhost/alice", Type: xmppclient.MessageGroupchat, Subject: "topic"}, nil},
		{"from the room itself", groupchat("ops@conference.localhost", "microbot: room notice"), nil},
		{"room we are not in", groupchat("other@conference.localhost/alice", "microbot: ping"), nil},
		{"error", &xmppclient.Message{From: "alice@localhost/phone", Type: xmppclient.MessageError, Body: "x",
			Error: &xmppclient.StanzaError{Condition: "service-unavailable"}}, nil},
		{"headline", &xmppclient.Message{From: "localhost", Type: xmppclient.MessageHeadline, Body: "server news"}, nil},
		{"from ourselves", &xmppclient.Message{From: "bot@localhost/other", Type: xmppclient.MessageChat, Body: "loop"}, nil},
		{"bad from", &xmppclient.Message{From: "a@b@c", Type: xmppclient.MessageChat, Body: "hi"}, nil},
		{"direct message", &xmppclient.Message{From: "Alice@Localhost/phone", Type: xmppclient.MessageChat, Body: "microbot: time", Thread: "t1"},
			&input.Event{UserID: "alice@localhost", UserName: "alice", Room: "alice@localhost", Thread: "t1", Direct: true, Addressed: true, Text: "time"}},
		{"normal message", &xmppclient.Message{From: "alice@localhost/phone", Body: "hello"},
			&input.Event{UserID: "alice@localhost", UserName: "alice", Room: "alice@localhost", Direct: true, Addressed: true, Text: "hello"}},
		{"private message from an occupant", &xmppclient.Message{From: "ops@conference.localhost/eve", Type: xmppclient.MessageChat, Body: "ping"},
			&input.Event{UserID: "ops@conference.localhost/eve", UserName: "eve", Room: "ops@conference.localhost/eve", Direct: true, Addressed: true, Text: "ping"}},
	}
	for _, tt := range tests {
		got := c.event(tt.msg)
		if tt.want == nil {
			if got != nil {
				t.Errorf("%s: got %+v, want it dropped", tt.name, got)
			}
			continue
		}
		if got == nil {
			t.Errorf("%s: dropped", tt.name)
			continue
		}
		w := *tt.want
		if got.Input != "xmpp" || got.UserID != w.UserID || got.UserName != w.UserName || got.Room != w.Room || got.Thread != w.Thread ||
			got.Direct != w.Direct || got.Addressed != w.Addressed || got.Text != w.Text {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, w)
		}
		if got.Meta[MetaTo] == "" || got.Meta[MetaType] == "" {
			t.Errorf("%s: no reply address in %v", tt.name, got.Meta)
		}
	}

	// Occupants change nicks (303 on the old nick's unavailable presence).
	p := occupant("alice", "alice@localhost/phone", xmppclient.PresenceUnavailable, xmppclient.StatusNewNick)
	p.MUCUser.Items[0].Nick = "alice2"
	c.presence(t.Context(), nil, p)
	if got := c.event(groupchat("ops@conference.localhost/alice2", "hi")); got == nil || got.UserID != "alice@localhost" {
		t.Errorf("after a nick change: %+v", got)
	}
	if _, ok := r.occupants["alice"]; ok {
		t.Error("old nick still known")
	}
	// They leave; someone whose JID is hidden takes the nick: not alice.
	c.presence(t.Context(), nil, occupant("alice2", "", xmppclient.PresenceUnavailable))
	// Someone else takes the nick in a semi-anonymous way: not alice.
	c.presence(t.Context(), nil, occupant("alice2", "", ""))
	if got := c.event(groupchat("ops@conference.localhost/alice2", "hi")); got == nil || got.UserID != "ops@conference.localhost/alice2" {
		t.Errorf("nick reused by someone else: %+v", got)
	}
	// Our own removal from the room is noticed.
	c.presence(t.Context(), nil, occupant("microbot", "bot@localhost/microbot", xmppclient.PresenceUnavailable, xmppclient.StatusSelf, xmppclient.StatusKicked))
	if r.joined {
		t.Error("still joined after being kicked")
	}
}
