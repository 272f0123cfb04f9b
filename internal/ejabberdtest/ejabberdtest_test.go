package ejabberdtest_test

import (
	"testing"

	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/ejabberdtest"
	"github.com/microbot/microbot/internal/prosodytest"
)

// Two people log in to a real ejabberd, one joins a room and the other
// finds them there and talks to them.
func TestServer(t *testing.T) {
	t.Parallel()
	srv := ejabberdtest.Start(t)
	alice := prosodytest.NewHuman(t, srv, "alice")
	bob := prosodytest.NewHuman(t, srv, "bob")
	room := ejabberdtest.Room("ops")
	alice.Join(room, "alice")
	bob.Join(room, "bob")
	bob.ExpectOccupant(room, "alice")
	bob.Say(room, xmppclient.MessageGroupchat, "hi all")
	if m := alice.ExpectMessage(room + "/bob"); m.Body != "hi all" {
		t.Errorf("alice got %q", m.Body)
	}
	alice.Say(ejabberdtest.JID("bob"), xmppclient.MessageChat, "psst")
	if m := bob.ExpectMessage(ejabberdtest.JID("alice")); m.Body != "psst" {
		t.Errorf("bob got %q", m.Body)
	}
}
