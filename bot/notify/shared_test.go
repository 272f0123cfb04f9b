package notify

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
)

// standbyPoster is a poster one instance at a time posts through (as an
// XMPP account under --ha), active as the test says.
type standbyPoster struct {
	fakePoster
	active atomic.Bool
}

func (s *standbyPoster) Active() bool { return s.active.Load() }

// instance is one bot of several sharing the world's store and broker, its
// posts claimed through a real Consul.
type instance struct {
	n      *Notifier
	slack  *fakePoster
	xmpp   *standbyPoster
	counts *counts
	stop   context.CancelFunc
	done   chan struct{}
}

func (w *world) instance(agent *consultest.Agent, opts ...Option) *instance {
	w.t.Helper()
	r, err := consul.New(consul.WithAddrs(agent.Addr()), consul.WithLogger(quiet))
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := consul.NewCoordinator(r, consul.WithKeyPrefix("test/"+w.t.Name()+"/"), consul.WithCoordinatorLogger(quiet))
	if err != nil {
		w.t.Fatal(err)
	}
	in := &instance{slack: &fakePoster{}, xmpp: &standbyPoster{}, counts: &counts{}, done: make(chan struct{})}
	in.xmpp.active.Store(true)
	n, err := New(w.broker(), w.store, map[string]input.Poster{"slack": in.slack, "xmpp": in.xmpp},
		append([]Option{WithLogger(quiet), WithInterval(0), WithHook(in.counts.hook), WithClaimer(c)}, opts...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	in.n = n
	ctx, cancel := context.WithCancel(w.ctx)
	in.stop = func() { cancel(); <-in.done }
	go func() { defer close(in.done); _ = n.Run(ctx) }()
	w.t.Cleanup(in.stop)
	return in
}

// texts are the texts posted, in order.
func texts(posts []input.Post) []string {
	var out []string
	for _, p := range posts {
		out = append(out, p.Text)
	}
	return out
}

// TestSharedPostsOnce: two instances each receive every event and post
// each once between them: events with a message id, without (one twice,
// as two events), and, when one instance stops with events waiting, the
// other posts them.
func TestSharedPostsOnce(t *testing.T) {
	agent := consultest.Start(t)
	w := newWorld(t)
	opts := []Option{WithInterval(10 * time.Millisecond), WithRoomQueue(64)} // no folding here
	a, b := w.instance(agent, opts...), w.instance(agent, opts...)
	slackC1 := Place{Input: "slack", Room: "C1"}
	w.watch(a.n, "t", slackC1)
	w.waitSubscribed(b.n, "t")

	var want []string
	for i := range 30 {
		h := map[string]string{"Content-Type": "text/plain"}
		if i%3 == 0 {
			h[client.HeaderID] = fmt.Sprintf("id-%d", i)
		}
		body := fmt.Sprintf("event %d", i)
		if i == 29 {
			body = "event 28" // the same as the last, without an id: a second event all the same
		}
		w.publish("t", h, []byte(body))
		want = append(want, body)
	}
	all := func() []string {
		got := append(texts(a.slack.all()), texts(b.slack.all())...)
		slices.Sort(got)
		return got
	}
	slices.Sort(want)
	testenv.Eventually(t, wait, "30 posts", func() bool { return len(all()) >= 30 })
	if got := all(); !slices.Equal(got, want) {
		t.Fatalf("posted %q\nwant   %q", got, want)
	}
	testenv.Eventually(t, wait, "each instance settled the 30 events", func() bool {
		return a.counts.get("posted")+a.counts.get("elsewhere") == 30 && b.counts.get("posted")+b.counts.get("elsewhere") == 30
	})
	if n := a.counts.get("posted") + b.counts.get("posted"); n != 30 {
		t.Errorf("outcomes a %v b %v: want 30 posted in all", a.counts.n, b.counts.n)
	}

	// a stops while events wait: b posts every one a did not.
	before := len(all())
	var more []string // after b settled the first 30
	for i := range 20 {
		body := fmt.Sprintf("late %d", i)
		w.publish("t", map[string]string{client.HeaderID: "late-" + body}, []byte(body))
		more = append(more, body)
		if i == 5 {
			a.stop()
		}
	}
	testenv.Eventually(t, wait, "20 more posts", func() bool { return len(all()) >= before+20 })
	// b has settled every event: posted, or posted elsewhere.
	testenv.Eventually(t, wait, "b's outcomes of the 50 events", func() bool {
		return b.counts.get("posted")+b.counts.get("elsewhere") == 50
	})
	got := all()
	for _, m := range more {
		if n := count(got, m); n != 1 {
			t.Errorf("%q posted %d times", m, n)
		}
	}
	if len(got) != 50 {
		t.Errorf("%d posts of 50 events", len(got))
	}
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestStandbyKeepsEvents: the instance standing by for an input keeps the
// events of its rooms; when the active one goes and it takes over, it
// posts those the other did not post, and no others; events kept longer
// than the hold are let go.
func TestStandbyKeepsEvents(t *testing.T) {
	agent := consultest.Start(t)
	w := newWorld(t)
	a, b := w.instance(agent), w.instance(agent, WithHold(time.Minute))
	b.xmpp.active.Store(false)
	ops := Place{Input: "xmpp", Room: "ops@conference.example.org"}
	w.watch(a.n, "t", ops)
	w.waitSubscribed(b.n, "t")

	for i := range 3 {
		w.publish("t", nil, fmt.Appendf(nil, "before %d", i))
	}
	a.xmpp.waitPosts(t, 3)
	testenv.Eventually(t, wait, "b holds 3", func() bool { q, _ := b.n.Backlog(); return q == 3 })
	a.stop() // a dies; events keep coming, to b only
	w.publish("t", nil, []byte("during 0"))
	w.publish("t", nil, []byte("during 1"))
	testenv.Eventually(t, wait, "b holds 5", func() bool { q, _ := b.n.Backlog(); return q == 5 })
	if n := len(b.xmpp.all()); n != 0 {
		t.Fatalf("b posted %d while standing by", n)
	}
	b.xmpp.active.Store(true) // b takes the account over
	b.xmpp.waitPosts(t, 2)
	testenv.Eventually(t, wait, "b's backlog empty", func() bool { q, _ := b.n.Backlog(); return q == 0 })
	if got := texts(b.xmpp.all()); !slices.Equal(got, []string{"during 0", "during 1"}) {
		t.Errorf("b posted %q, want only what a did not", got)
	}
	if got := texts(a.xmpp.all()); !slices.Equal(got, []string{"before 0", "before 1", "before 2"}) {
		t.Errorf("a posted %q", got)
	}
	if b.counts.get("elsewhere") != 3 {
		t.Errorf("b's outcomes %v: want 3 elsewhere", b.counts.n)
	}
}

// TestStandbyLetsOldEventsGo: events kept past the hold are not posted
// when this instance takes over (the other had them long ago), and a
// standby room keeps only its latest few.
func TestStandbyLetsOldEventsGo(t *testing.T) {
	agent := consultest.Start(t)
	w := newWorld(t)
	b := w.instance(agent, WithHold(300*time.Millisecond), WithHoldQueue(3))
	b.xmpp.active.Store(false)
	ops := Place{Input: "xmpp", Room: "ops"}
	w.watch(b.n, "t", ops)
	for i := range 5 {
		w.publish("t", nil, fmt.Appendf(nil, "old %d", i))
	}
	testenv.Eventually(t, wait, "the 5 events counted", func() bool {
		return b.counts.get("received") == 5 && b.counts.get("elsewhere") == 2
	})
	if q, f := b.n.Backlog(); q != 3 || f != 0 {
		t.Fatalf("backlog %d queued %d folded, want the last 3 and nothing folded", q, f)
	}
	testenv.Eventually(t, wait, "the old events let go", func() bool { q, _ := b.n.Backlog(); return q == 0 })
	b.xmpp.active.Store(true)
	w.publish("t", nil, []byte("new"))
	if got := texts(b.xmpp.waitPosts(t, 1)); !slices.Equal(got, []string{"new"}) {
		t.Errorf("posted %q, want only the new event", got)
	}
}

func TestClaimerAndQueueGroup(t *testing.T) {
	w := newWorld(t)
	if _, err := New(w.broker(), w.store, nil, WithQueueGroup("bot"), WithClaimer(noClaims{})); err == nil {
		t.Fatal("a queue group and a claimer were accepted")
	}
}

type noClaims struct{}

func (noClaims) Claim(context.Context, []string) (bool, error) { return true, nil }

// TestTakeoverPostsAllKept: what a standby kept is posted one by one once
// it takes over, not folded, however many more than a room's queue; the
// events arriving meanwhile queue behind them as usual.
func TestTakeoverPostsAllKept(t *testing.T) {
	agent := consultest.Start(t)
	w := newWorld(t)
	b := w.instance(agent) // room queue 5
	b.xmpp.active.Store(false)
	b.xmpp.gate = make(chan struct{}) // posts wait for a token
	w.watch(b.n, "t", Place{Input: "xmpp", Room: "ops"})
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("kept %d", i))
		w.publish("t", nil, []byte(want[i]))
	}
	testenv.Eventually(t, wait, "20 kept", func() bool { q, _ := b.n.Backlog(); return q == 20 })
	b.xmpp.active.Store(true)
	b.xmpp.gate <- struct{}{} // the first kept one is posted: the others are queued
	for i := range 3 {
		want = append(want, fmt.Sprintf("new %d", i))
		w.publish("t", nil, []byte(want[20+i]))
	}
	testenv.Eventually(t, wait, "3 new received", func() bool { return b.counts.get("received") == 23 })
	for i := range 22 {
		select {
		case b.xmpp.gate <- struct{}{}:
		case <-time.After(wait):
			t.Fatalf("post %d never came (posted %q)", i+2, texts(b.xmpp.all()))
		}
	}
	if got := texts(b.xmpp.waitPosts(t, 23)); !slices.Equal(got, want) {
		t.Errorf("posted %q", got)
	}
	if f := b.counts.get("folded"); f != 0 {
		t.Errorf("%d folded", f)
	}
}
