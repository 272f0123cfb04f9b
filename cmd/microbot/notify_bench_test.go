package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker"
)

// Benchmarks of events into chat, on the real binary (built without
// -race) and a publisher service of the benchmark, over the http broker
// and NATS:
//
//	go test -run XXX -bench Notify ./cmd/microbot/
//
// BenchmarkNotifyLatency publishes one event at a time on a topic the
// console watches and waits for it on the console's output: ns/op is one
// publish → posted round trip, and p50-ms and p99-ms its percentiles. The
// room's pacing is off (--notify_interval 0): an event arriving in an idle
// room is posted at once anyway, pacing only spaces the next ones.
//
// BenchmarkNotifyStorm publishes 50,000 events as fast as the publisher
// can on a watched topic and reports the bot's resident memory before
// (MB-rss-idle), its peak while the storm lasts, sampled every 50 ms
// (MB-rss-peak), and once the room has caught up (MB-rss-after); and how
// many events a second the publisher got through (events/s).

// benchNotifyBot starts microbot with the console watching topic.
func benchNotifyBot(b *testing.B, reg string, flags []string, topic string, args ...string) *benchBot {
	b.Helper()
	user := osUser(b)
	bb := startBenchBot(b, reg, append(append([]string{"--admins", "shell:" + user, "--shell_user", user}, flags...), args...)...)
	if got := bb.ask(b, "watch "+topic); len(got) != 1 || !strings.HasPrefix(got[0], "watching "+topic) {
		b.Fatalf("watch: %q", got)
	}
	return bb
}

func osUser(b *testing.B) string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "bench"
}

func BenchmarkNotifyLatency(b *testing.B) {
	for _, name := range []string{"http", "nats"} {
		b.Run(name, func(b *testing.B) {
			buildBench(b)
			reg := b.TempDir()
			flags := brokerArgs(b, name)
			bb := benchNotifyBot(b, reg, flags, "lat", "--notify_interval", "0")
			pub := testPublisher(b, reg, flags)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				m := &broker.Message{Header: map[string]string{"Content-Type": "text/plain"}, Body: fmt.Appendf(nil, "lat %d", i)}
				if err := pub.Publish(ctx, "lat", m); err != nil {
					b.Fatal(err)
				}
				want := fmt.Sprintf("lat %d", i)
				for bb.out.Scan() && bb.out.Text() != want {
				}
				lat = append(lat, time.Since(start))
				if !bb.out.Scan() || bb.out.Text() != "— lat" { // the post's last line
					b.Fatalf("after %q: %q %v", want, bb.out.Text(), bb.out.Err())
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func BenchmarkNotifyStorm(b *testing.B) {
	const events = 50000
	for _, name := range []string{"http", "nats"} {
		b.Run(name, func(b *testing.B) {
			buildBench(b)
			for range b.N {
				reg := b.TempDir()
				flags := brokerArgs(b, name)
				bb := benchNotifyBot(b, reg, flags, "storm")
				pub := testPublisher(b, reg, flags)
				pid := bb.cmd.Process.Pid
				time.Sleep(2 * time.Second) // let it settle
				idle := rss(b, pid)
				// The console's output, drained (the posts and summaries).
				go func() {
					for bb.out.Scan() {
					}
				}()
				var mu sync.Mutex
				peak := idle
				stop := make(chan struct{})
				sampled := make(chan struct{})
				go func() {
					defer close(sampled)
					t := time.NewTicker(50 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						r := rss(b, pid)
						mu.Lock()
						peak = max(peak, r)
						mu.Unlock()
					}
				}()
				body := []byte(strings.Repeat("x", 100))
				start := time.Now()
				for i := range events {
					m := &broker.Message{Header: map[string]string{"Content-Type": "text/plain"}, Body: body}
					if err := pub.Publish(context.Background(), "storm", m); err != nil {
						b.Fatalf("event %d: %v", i, err)
					}
				}
				took := time.Since(start)
				time.Sleep(12 * time.Second) // the room catches up: at most a few posts and summaries
				close(stop)
				<-sampled
				b.ReportMetric(idle, "MB-rss-idle")
				b.ReportMetric(peak, "MB-rss-peak")
				b.ReportMetric(rss(b, pid), "MB-rss-after")
				b.ReportMetric(events/took.Seconds(), "events/s")
			}
		})
	}
}
