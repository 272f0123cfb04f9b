package access

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/input"
)

// forEachStore runs a confirmation test over each store: this process's
// memory, and a store shared through a real Consul agent (as instances of
// the bot side by side keep them).
func forEachStore(t *testing.T, f func(t *testing.T, opts ...Option)) {
	t.Run("memory", func(t *testing.T) { f(t) })
	t.Run("consul", func(t *testing.T) { f(t, WithSharedStore(consulStore(t, consultest.Start(t).Addr()))) })
}

// consulStore is the Consul store of confirmations of one instance (a
// coordinator of its own) at addr.
func consulStore(t *testing.T, addr string) SharedStore {
	t.Helper()
	r, err := consul.New(consul.WithAddrs(addr), consul.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := consul.NewCoordinator(r, consul.WithKeyPrefix("test/"+strings.ReplaceAll(t.Name(), "/", "-")+"/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c.Store("confirm")
}

// TestConfirmationCrossesInstances: two instances (two guards, two bots)
// share their confirmations through Consul: a code one gave is confirmed
// on the other, once, and the other finds it used up.
func TestConfirmationCrossesInstances(t *testing.T) {
	agent := consultest.Start(t)
	a := newWorld(t, guardPolicy, WithSharedStore(consulStore(t, agent.Addr())))
	b := newWorld(t, guardPolicy, WithSharedStore(consulStore(t, agent.Addr())))
	b.clock = a.clock
	b.guard.now = a.clock.now

	c1 := code(t, a.say(dev, "drop table users"))
	a.noCall()
	if rep := b.say(mallory, "confirm "+c1); !rep.Error || rep.Text != "error: only the person who asked for drop can confirm it" {
		t.Errorf("confirmed by another user on b: %+v", rep)
	}
	if rep := b.say(dev, "confirm "+c1); rep.Text != "drop ran" {
		t.Fatalf("confirm on b: %+v", rep)
	}
	c := b.lastCall()
	if get(c.md, MetaConfirmedBy) != "shell:dev" || c.args[0] != "drop" || strings.Join(c.args, " ") != "drop table users" {
		t.Errorf("the service got %+v", c)
	}
	if rep := a.say(dev, "confirm "+c1); !strings.Contains(rep.Text, "no command is waiting") {
		t.Errorf("the code used on b still works on a: %+v", rep)
	}
	a.noCall()
	recs := b.audit.records(t)
	last := recs[len(recs)-1]
	if last.Decision != audit.Confirmed || last.Command != "drop" || last.Args != "table users" || last.RequestedBy != "shell:dev" || last.Code != c1 {
		t.Errorf("b's record of the confirmation: %+v", last)
	}

	// Two-person, across instances and back.
	c2 := code(t, b.say(ops, "wipe disk"))
	if rep := a.say(ops, "confirm "+c2); !rep.Error || !strings.Contains(rep.Text, "two-person rule") {
		t.Errorf("self-confirmation on a: %+v", rep)
	}
	if rep := a.say(ops2, "confirm "+c2); rep.Text != "wipe ran" {
		t.Errorf("second person on a: %+v", rep)
	}

	// Expiry is the same everywhere.
	c3 := code(t, a.say(dev, "drop it"))
	a.clock.add(2*time.Minute + time.Second)
	if rep := b.say(dev, "confirm "+c3); !rep.Error || !strings.Contains(rep.Text, "expired") {
		t.Errorf("late confirm on b: %+v", rep)
	}
	b.noCall()
}

// TestSharedConfirmationsBounded: the shared store keeps the bounds of the
// memory one.
func TestSharedConfirmationsBounded(t *testing.T) {
	ss := &sharedStore{s: consulStore(t, consultest.Start(t).Addr())}
	ctx := context.Background()
	now := time.Now()
	u := Caller{Input: "shell", UserID: "u", Room: "r"}
	ev := &input.Event{Input: "shell", UserID: "u", Room: "r", Direct: true, Addressed: true, Text: "drop it"}
	var first string
	for i := range maxPendingPerUser + 3 {
		c, err := ss.add(ctx, &pending{req: &command.Request{Event: ev, Command: &command.Command{Name: "drop"}}, requester: u,
			created: now.Add(time.Duration(i) * time.Millisecond), expires: now.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = c
		}
	}
	count := func() int {
		n := 0
		if err := ss.s.Range(ctx, func(string, []byte, uint64) bool { n++; return true }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != maxPendingPerUser {
		t.Errorf("%d waiting for one user, want %d", n, maxPendingPerUser)
	}
	if _, res, err := ss.take(ctx, first, u, now, func(*pending) (ConfirmMode, bool) { return ConfirmSelf, true }); err != nil || res != confirmUnknown {
		t.Errorf("the oldest code was kept: %v %v", res, err)
	}
	// Someone else adding long after forgets what expired.
	other := Caller{Input: "shell", UserID: "v", Room: "r"}
	if _, err := ss.add(ctx, &pending{req: &command.Request{Event: ev, Command: &command.Command{Name: "drop"}}, requester: other,
		created: now.Add(time.Minute + expiredKept + time.Second), expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d left after the sweep, want 1", n)
	}
}
