package xmpp_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/prosodytest"
)

// reports records what a connection reports about its reconnections.
type reports struct {
	mu  sync.Mutex
	got []string
}

func (r *reports) report(up bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case up && err == nil:
		r.got = append(r.got, "up")
	case !up && err != nil:
		r.got = append(r.got, "down")
	default:
		r.got = append(r.got, "bad report")
	}
}

func (r *reports) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// The connection reconnects by itself, out of the bot's sight: it reports
// each break, each failed attempt and each reconnection, so the bot's
// metrics count them (bot.Reconnector).
func TestReportsReconnections(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("bot", "bot-pw")
	b := startBot(t, botConfig(srv, prosodytest.Room("ops")))
	rc, ok := b.conn.(interface {
		ReportConnection(func(up bool, err error))
	})
	if !ok {
		t.Fatalf("%T does not report its reconnections", b.conn)
	}
	var r reports
	rc.ReportConnection(r.report)

	srv.Stop()
	b.waitConnected(t, false)
	time.Sleep(time.Second) // an attempt or more fails while the server is down
	srv.Start()
	b.waitConnected(t, true)
	deadline := time.Now().Add(wait) // "up" is reported just after Connected turns true
	got := r.list()
	for (len(got) == 0 || got[len(got)-1] != "up") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = r.list()
	}
	// down (the break), down for each failed attempt, then up.
	if len(got) < 3 || got[len(got)-1] != "up" || slices.Contains(got[:len(got)-1], "up") || slices.Contains(got, "bad report") {
		t.Errorf("reports across a restart: %q, want down, at least one more down, up", got)
	}
	if n := int(b.dials.n.Load()) - 1; len(got) != n+1 {
		t.Errorf("%d reports for %d redials, want one per redial and one for the break", len(got), n)
	}

	// Closing is not a break.
	before := len(r.list())
	if err := b.conn.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := r.list(); len(got) != before {
		t.Errorf("reports after Close: %q", got[before:])
	}
}
