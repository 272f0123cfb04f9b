package consul_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
)

// BenchmarkDiscoveryPropagation measures, against a real agent, how long a
// change takes to reach a watcher: from Register returning to the watcher
// holding the new node ("reg-p50-ms", "reg-p99-ms"), and from Deregister
// returning to the watcher seeing it go ("dereg-p50-ms", "dereg-p99-ms").
// Consul often commits the change before the agent's HTTP answer reaches
// the caller, so the watcher may see it first: such times count as zero.
// "e2e-p50-ms" and "e2e-p99-ms" time the whole of it for registrations,
// from calling Register to the watcher holding the node.
// Each iteration registers one node and deregisters it. Run it with enough
// iterations for the percentiles to mean something:
//
//	go test -run '^$' -bench DiscoveryPropagation -benchtime 200x ./framework/registry/consul/
func BenchmarkDiscoveryPropagation(b *testing.B) {
	agent := consultest.Start(b)
	r := newRegistry(b, consul.WithAddrs(agent.Addr()))
	const name = "bench.propagation"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := r.Watch(ctx, registry.WithService(name))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	type seen struct {
		at  time.Time
		ids []string
	}
	events := make(chan seen, 16)
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				close(events)
				return
			}
			ev := seen{at: time.Now()}
			if res.Action != registry.Delete {
				ev.ids = nodeIDs([]*registry.Service{res.Service})
			}
			events <- ev
		}
	}()
	waitFor := func(cond func([]string) bool) time.Time {
		timeout := time.After(wait)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					b.Fatal("watcher stopped")
				}
				if cond(ev.ids) {
					return ev.at
				}
			case <-timeout:
				b.Fatalf("no matching watch event within %v", wait)
			}
		}
	}

	var reg, dereg, e2e []time.Duration
	b.ResetTimer()
	for i := range b.N {
		svc := greeter(name, "1")
		svc.Nodes = []*registry.Node{{ID: fmt.Sprintf("%s-%d", name, i), Address: "127.0.0.1:9000"}}
		id := svc.Nodes[0].ID
		start := time.Now()
		if err := r.Register(ctx, svc, registry.WithTTL(30*time.Second)); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		at := waitFor(func(ids []string) bool { return slices.Contains(ids, id) })
		reg = append(reg, max(at.Sub(done), 0))
		e2e = append(e2e, at.Sub(start))

		if err := r.Deregister(ctx, svc); err != nil {
			b.Fatal(err)
		}
		done = time.Now()
		dereg = append(dereg, max(waitFor(func(ids []string) bool { return !slices.Contains(ids, id) }).Sub(done), 0))
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(reg, 50)), "reg-p50-ms")
	b.ReportMetric(ms(percentile(reg, 99)), "reg-p99-ms")
	b.ReportMetric(ms(percentile(dereg, 50)), "dereg-p50-ms")
	b.ReportMetric(ms(percentile(dereg, 99)), "dereg-p99-ms")
	b.ReportMetric(ms(percentile(e2e, 50)), "e2e-p50-ms")
	b.ReportMetric(ms(percentile(e2e, 99)), "e2e-p99-ms")
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100 // ceil(p/100 * n), 1-based
	return s[max(i, 1)-1]
}
