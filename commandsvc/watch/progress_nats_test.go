package watch_test

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/broker"
	brokernats "github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/internal/testenv"
)

// natsBroker returns a nats broker for the server at addr, not connected.
func natsBroker(t testing.TB, addr string) broker.Broker {
	t.Helper()
	b, err := brokernats.New(brokernats.WithAddrs(addr), brokernats.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProgressNATSSlow: on NATS a line travels service → server → bot
// while Exec's answer comes over RPC. With the service's connection to the
// server slowed (a proxy holding every chunk 150 ms each way), the lines
// published just before Exec returns reach the server long after the
// answer reaches the bot; with the bot's slowed, they reach the bot long
// after the answer. They show all the same, before the reply: Progress
// returns once the server has routed the line to the bot's connection, and
// the bot flushes its own connection before it counts what it has to show.
func TestProgressNATSSlow(t *testing.T) {
	for _, slow := range []string{"service", "bot"} {
		t.Run(slow, func(t *testing.T) {
			srv := natstest.Start(t)
			proxy := testenv.StartProxy(t, srv.Addr)
			botAddr, svcAddr := srv.Addr, proxy.Addr()
			if slow == "bot" {
				botAddr, svcAddr = svcAddr, botAddr
			}
			reg := memory.New()
			botB, svcB := natsBroker(t, botAddr), natsBroker(t, svcAddr)
			connectBrokers(t, botB, svcB)
			proxy.SetDelay(150 * time.Millisecond)
			var out outcomes
			e, _ := progressEnv(t, reg, botB, svcB, watch.WithProgressHook(out.hook))
			for i := range 2 {
				r := &recorder{}
				a, b := fmt.Sprintf("run%d-a", i), fmt.Sprintf("run%d-b", i)
				rep := e.run("job slow "+a+" "+b, r)
				lines, late := r.close()
				if rep.Error || rep.Text != "done" {
					t.Fatalf("reply %+v", rep)
				}
				if want := []string{a, b}; !slices.Equal(lines, want) || len(late) > 0 {
					t.Fatalf("run %d: progress before the reply %q (after it %q), want %q", i, lines, late, want)
				}
			}
			if n := out.get(watch.ProgressDropped); n != 0 {
				t.Errorf("%d lines dropped", n)
			}
		})
	}
}
