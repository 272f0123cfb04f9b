package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkHATakeover measures how long two instances on one XMPP account
// (--ha, default settings) leave the room without a bot when the active one
// goes: 10 times it is killed (SIGKILL, as a crash), 10 times it is
// stopped (SIGTERM, as a rolling update), and each time it is started
// again and stands by (the kills fall at random points of the active one's
// pass cycle). It prints a table of the time from the kill or stop
// to the bot entering the room again (join) and to the first answer in the
// room (answer: a person asks every 500 ms), p50 and max, and reports the
// p50 and max of SIGKILL's answer as metrics. Real processes: a Consul
// cluster of three servers, prosody, the microbot binary.
//
//	go test -run '^$' -bench HATakeover -benchtime 1x ./cmd/microbot/
func BenchmarkHATakeover(b *testing.B) {
	const rounds = 10
	for range b.N {
		x := newXMPPPair(b)
		type row struct {
			name          string
			join, answers []time.Duration
		}
		rows := []*row{{name: "SIGKILL"}, {name: "SIGTERM"}}
		for _, r := range rows {
			for i := range rounds {
				gone := x.active
				// At a random point of the active one's 1 s pass cycle: the
				// rounds would otherwise fall in step with it.
				time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
				at := time.Now()
				if r.name == "SIGKILL" {
					gone.kill()
				} else {
					gone.stop(b)
				}
				answer := x.takeover(fmt.Sprintf("%s-%d-", strings.ToLower(r.name), i), at)
				joined := x.joinedAfter(at)
				if joined.IsZero() {
					b.Fatalf("%s round %d: answered, but no entry into the room seen", r.name, i)
				}
				r.join = append(r.join, joined.Sub(at))
				r.answers = append(r.answers, answer)
				gone.start()
				gone.waitReady(http.StatusOK, "input xmpp: standby")
			}
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "takeover of an XMPP account, %d rounds each (default --ha_ttl %v):\n", rounds, 5*time.Second)
		fmt.Fprintf(&sb, "%-8s  %9s  %9s  %11s  %11s\n", "", "join p50", "join max", "answer p50", "answer max")
		for _, r := range rows {
			fmt.Fprintf(&sb, "%-8s  %9s  %9s  %11s  %11s\n", r.name, p50(r.join), slices.Max(r.join).Round(time.Millisecond),
				p50(r.answers), slices.Max(r.answers).Round(time.Millisecond))
		}
		b.Log("\n" + sb.String())
		b.ReportMetric(p50(rows[0].answers).Seconds(), "kill-p50-s")
		b.ReportMetric(slices.Max(rows[0].answers).Seconds(), "kill-max-s")
		b.ReportMetric(p50(rows[1].answers).Seconds(), "term-p50-s")
		b.ReportMetric(slices.Max(rows[1].answers).Seconds(), "term-max-s")
	}
}

// p50 is the median of ds, rounded to the millisecond.
func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}
