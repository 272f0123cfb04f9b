package slack_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/slack"
	"github.com/microbot/microbot/input/slack/slacktestws"
)

// instance is one of two bots on one Slack app: its input, connected, read
// into a channel.
type instance struct {
	in     *slack.Input
	conn   input.Conn
	n      int // its connection's number on the server
	events chan *input.Event
}

// claimer is the Claimer of an instance: a Consul coordinator of its own,
// as each process has, at addr.
func claimer(t *testing.T, prefix, addr string) *consul.Coordinator {
	t.Helper()
	r, err := consul.New(consul.WithAddrs(addr), consul.WithTimeout(time.Second), consul.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := consul.NewCoordinator(r, consul.WithKeyPrefix(prefix), consul.WithCoordinatorLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func connect(t *testing.T, srv *slacktestws.Server, n int, c slack.Claimer) *instance {
	t.Helper()
	in, err := slack.New(slack.Config{AppToken: srv.AppToken, BotToken: srv.BotToken, APIURL: srv.APIURL()},
		slack.WithLogger(testLogger(t)), slack.WithClaimer(c))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := in.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitConnections(ctx, n); err != nil {
		t.Fatal(err)
	}
	inst := &instance{in: in, conn: conn, n: n, events: make(chan *input.Event, 16)}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := conn.Recv(rctx)
			if err != nil {
				return
			}
			inst.events <- ev
		}
	}()
	t.Cleanup(func() { stop(); conn.Close(); <-done })
	return inst
}

// next returns the next event the instance's bot gets.
func (i *instance) next(t *testing.T) *input.Event {
	t.Helper()
	select {
	case ev := <-i.events:
		return ev
	case <-time.After(wait):
		t.Fatalf("instance on connection %d: no event", i.n)
	}
	return nil
}

// TestRetryOnTheOtherInstanceIsDropped: Slack retries a delivery on the
// other connection of the app, or sends one message as two events to two
// connections: the instances, sharing their claims through Consul, hand
// it to their bots once.
func TestRetryOnTheOtherInstanceIsDropped(t *testing.T) {
	agent := consultest.Start(t)
	srv := slacktestws.New(slacktestws.WithUser("U1", "Ada"))
	t.Cleanup(srv.Close)
	prefix := "test/" + t.Name() + "/"
	a := connect(t, srv, 1, claimer(t, prefix, agent.Addr()))
	b := connect(t, srv, 2, claimer(t, prefix, agent.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	bot := "<@" + srv.BotUserID + "> "
	send := func(m slacktestws.Message, dm bool) slacktestws.Delivery {
		t.Helper()
		var d slacktestws.Delivery
		var err error
		if dm {
			d, err = srv.DirectMessage(ctx, m)
		} else {
			d, err = srv.Mention(ctx, m)
		}
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	first := send(slacktestws.Message{Channel: "C1", User: "U1", Text: bot + "deploy", EventID: "EvHA1", Connection: a.n}, false)
	if ev := a.next(t); ev.Text != "deploy" {
		t.Fatalf("a got %q", ev.Text)
	}
	retry := send(slacktestws.Message{Channel: "C1", User: "U1", Text: bot + "deploy", TS: first.TS, EventID: "EvHA1", RetryAttempt: 1, Connection: b.n}, false)
	dm := send(slacktestws.Message{Channel: "D1", User: "U1", Text: "status", Connection: a.n}, true)
	dmAsMention := send(slacktestws.Message{Channel: "D1", User: "U1", Text: bot + "status", TS: dm.TS, Connection: b.n}, false)
	// A marker on each connection: what an instance gets before it is
	// all it got of the above (a connection's deliveries keep their order).
	markA := send(slacktestws.Message{Channel: "D1", User: "U1", Text: "marker a", Connection: a.n}, true)
	markB := send(slacktestws.Message{Channel: "D1", User: "U1", Text: "marker b", Connection: b.n}, true)
	var got []string
	for _, i := range []*instance{a, b} {
		for {
			ev := i.next(t)
			if strings.HasPrefix(ev.Text, "marker") {
				break
			}
			got = append(got, ev.Text)
		}
	}
	// The retry never reaches a bot; the direct message, sent as two
	// events to the two instances, reaches one (whichever claimed first).
	if len(got) != 1 || got[0] != "status" {
		t.Fatalf("the bots got %q besides the first delivery, want the direct message once", got)
	}
	for _, d := range []slacktestws.Delivery{first, retry, dm, dmAsMention, markA, markB} {
		if err := srv.WaitAck(ctx, d.EnvelopeID); err != nil {
			t.Fatalf("envelope %s not acked: %v", d.EnvelopeID, err)
		}
	}
}

// TestClaimerDownStillAnswers: when the shared claims cannot be reached,
// a delivery is handled anyway (logged): better twice than never.
func TestClaimerDownStillAnswers(t *testing.T) {
	agent := consultest.Start(t)
	srv := slacktestws.New(slacktestws.WithUser("U1", "Ada"))
	t.Cleanup(srv.Close)
	c := claimer(t, "test/"+t.Name()+"/", agent.Addr())
	a := connect(t, srv, 1, c)
	if err := agent.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + srv.BotUserID + "> ping"}); err != nil {
		t.Fatal(err)
	}
	if ev := a.next(t); ev.Text != "ping" {
		t.Fatalf("got %q", ev.Text)
	}
}
