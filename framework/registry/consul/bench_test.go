package consul_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/testenv"
)

// BenchmarkDiscoveryPropagation measures, against real agents, how long a
// change takes to reach a watcher: from Register returning to the watcher
// holding the new node ("reg-p50-ms", "reg-p99-ms"), and from Deregister
// returning to the watcher seeing it go ("dereg-p50-ms", "dereg-p99-ms").
// Consul often commits the change before the agent's HTTP answer reaches
// the caller, so the watcher may see it first: such times count as zero.
// "e2e-p50-ms" and "e2e-p99-ms" time the whole of it for registrations,
// from calling Register to the watcher holding the node.
// Each iteration registers one node and deregisters it.
//
// agent=dev is one -dev agent; agent=cluster is a 3-server cluster where
// the node registers through one follower and the watcher reads from the
// other, so the change crosses raft: with stale reads (the registry's
// default) the watcher sees it once that follower has applied it, with
// consistent reads once the leader has. Run it with enough iterations for
// the percentiles to mean something:
//
//	go test -run '^$' -bench DiscoveryPropagation -benchtime 200x ./framework/registry/consul/
func BenchmarkDiscoveryPropagation(b *testing.B) {
	b.Run("agent=dev", func(b *testing.B) {
		agent := consultest.Start(b)
		benchPropagation(b, agent.Addr(), agent.Addr())
	})
	for _, reads := range []string{"stale", "consistent"} {
		b.Run("agent=cluster/reads="+reads, func(b *testing.B) {
			cl := consultest.StartCluster(b, 3)
			leader, err := cl.WaitLeader()
			if err != nil {
				b.Fatal(err)
			}
			var followers []string
			for _, a := range cl.Agents {
				if a != leader {
					followers = append(followers, a.Addr())
				}
			}
			var opts []consul.Option
			if reads == "consistent" {
				opts = append(opts, consul.WithConsistentReads())
			}
			benchPropagation(b, followers[0], followers[1], opts...)
		})
	}
}

// benchPropagation registers through the agent at regAddr and watches
// through the one at watchAddr, with the watcher's registry built with
// opts.
func benchPropagation(b *testing.B, regAddr, watchAddr string, opts ...consul.Option) {
	r := newRegistry(b, consul.WithAddrs(regAddr))
	watched := newRegistry(b, append(opts, consul.WithAddrs(watchAddr))...)
	const name = "bench.propagation"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := watched.Watch(ctx, registry.WithService(name))
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
	b.ReportMetric(ms(percentile(reg, 50)), "reg-p50-ms")
	b.ReportMetric(ms(percentile(reg, 99)), "reg-p99-ms")
	b.ReportMetric(ms(percentile(dereg, 50)), "dereg-p50-ms")
	b.ReportMetric(ms(percentile(dereg, 99)), "dereg-p99-ms")
	b.ReportMetric(ms(percentile(e2e, 50)), "e2e-p50-ms")
	b.ReportMetric(ms(percentile(e2e, 99)), "e2e-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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

// BenchmarkLeaderElection kills the leader of a 3-server cluster while a bot
// loop runs (list services, get service, and a query from a freshly started
// client, one round every 100 ms, given every server, the leader first), a
// watcher of every service runs, and a new node of a service is registered
// every 250 ms through a surviving server. reads=consistent reads with
// Consul's default consistency, as microbot did before stale reads;
// reads=stale is the registry's default. Reported, per election:
//
//   - failed-calls of calls: discovery calls of the bot loop that failed,
//     from the kill until 20 rounds after a new leader was elected;
//   - outage-s: from the first failed call to the last;
//   - election-s: from the kill to a new leader;
//   - watch-delay-p50-ms, watch-delay-max-ms: for each node registered,
//     how long after a consistent read first showed it (polled every 50 ms)
//     the watcher had it (zero if the watcher was first);
//   - watch-missed: nodes the watcher never showed (within 2 minutes).
//
// Each iteration starts its own cluster (15-30 s); run it once:
//
//	go test -run '^$' -bench LeaderElection -benchtime 1x ./framework/registry/consul/
func BenchmarkLeaderElection(b *testing.B) {
	for _, mode := range []struct {
		name       string
		consistent bool
	}{{"reads=consistent", true}, {"reads=stale", false}} {
		b.Run(mode.name, func(b *testing.B) {
			var sum electionFigures
			for range b.N {
				f := runElection(b, mode.consistent)
				b.Logf("%+v", f)
				sum.failed += f.failed
				sum.calls += f.calls
				sum.outage += f.outage
				sum.election += f.election
				sum.delayP50 += f.delayP50
				sum.delayMax += f.delayMax
				sum.missed += f.missed
			}
			n := float64(b.N)
			b.ReportMetric(float64(sum.failed)/n, "failed-calls")
			b.ReportMetric(float64(sum.calls)/n, "calls")
			b.ReportMetric(sum.outage.Seconds()/n, "outage-s")
			b.ReportMetric(sum.election.Seconds()/n, "election-s")
			b.ReportMetric(ms(sum.delayP50)/n, "watch-delay-p50-ms")
			b.ReportMetric(ms(sum.delayMax)/n, "watch-delay-max-ms")
			b.ReportMetric(float64(sum.missed)/n, "watch-missed")
		})
	}
}

// electionFigures are what one run of BenchmarkLeaderElection measured.
type electionFigures struct {
	failed, calls      int
	outage, election   time.Duration
	delayP50, delayMax time.Duration
	markers, missed    int
}

func runElection(b *testing.B, consistent bool) electionFigures {
	b.StopTimer()
	cl := consultest.StartCluster(b, 3)
	bin := testenv.Build(b, "github.com/microbot/microbot/examples/greeter")
	leader, err := cl.WaitLeader()
	if err != nil {
		b.Fatal(err)
	}
	var followers []*consultest.Agent
	for _, a := range cl.Agents {
		if a != leader {
			followers = append(followers, a)
		}
	}
	via, changer := followers[0], followers[1]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	opts := []consul.Option{consul.WithAddrs(others(cl, leader)...)}
	if consistent {
		opts = append(opts, consul.WithConsistentReads())
	}
	bot := newRegistry(b, opts...)
	const marker = "election.marker"
	var mu sync.Mutex
	watchSeen, truthSeen := map[string]time.Time{}, map[string]time.Time{}
	var registered []string
	record := func(seen map[string]time.Time, ids []string) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if _, ok := seen[id]; !ok {
				seen[id] = now
			}
		}
	}
	w, err := bot.Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			if res.Service.Name == marker && res.Action != registry.Delete {
				record(watchSeen, nodeIDs([]*registry.Service{res.Service}))
			}
		}
	}()
	startGreeter(b, bin, "greeter-1", strings.Join(others(cl, via), ","))
	expectNodes(b, bot, greeterName, "greeter-1")
	loop := startBotLoop(b, bot)
	loop.waitCalls(b, nil, 3)

	// A service registering new nodes through a surviving server, and a
	// consistent reader saying when each reached the catalog.
	changes := newRegistry(b, consul.WithAddrs(changer.Addr(), via.Addr()), consul.WithTimeout(wait))
	truth, err := changer.API()
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	stopMarkers, stopTruth := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopMarkers:
				return
			case <-time.After(250 * time.Millisecond):
			}
			svc := greeter(marker, "1", fmt.Sprintf("m-%03d", i))
			if err := changes.Register(ctx, svc); err == nil {
				mu.Lock()
				registered = append(registered, svc.Nodes[0].ID)
				mu.Unlock()
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stopTruth:
				return
			case <-time.After(50 * time.Millisecond):
			}
			qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
			entries, _, err := truth.Health().Service(marker, "", false, (&api.QueryOptions{}).WithContext(qctx))
			qcancel()
			if err == nil {
				var ids []string
				for _, e := range entries {
					ids = append(ids, e.Service.ID)
				}
				record(truthSeen, ids)
			}
		}
	})

	b.StartTimer()
	killed := time.Now()
	if err := leader.Kill(); err != nil {
		b.Fatal(err)
	}
	if _, err := cl.WaitLeader(); err != nil {
		b.Fatal(err)
	}
	f := electionFigures{election: time.Since(killed)}
	before, _ := loop.counts()
	loop.waitCalls(b, before, 20)
	b.StopTimer()
	close(stopMarkers)
	// Every node registered reaches the catalog, then the watcher.
	deadline := time.Now().Add(clusterWait)
	for {
		mu.Lock()
		var missing int
		for _, id := range registered {
			_, t := truthSeen[id]
			_, w := watchSeen[id]
			if !t || !w {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stopTruth)
	wg.Wait()
	loop.end()

	loop.mu.Lock()
	for _, at := range loop.failedAt {
		if !at.Before(killed) {
			f.failed++
		}
	}
	if n := len(loop.failedAt); n > 0 {
		f.outage = loop.failedAt[n-1].Sub(loop.failedAt[0])
	}
	for _, n := range loop.calls {
		f.calls += n
	}
	loop.mu.Unlock()
	mu.Lock()
	var delays []time.Duration
	for _, id := range registered {
		t, okT := truthSeen[id]
		w, okW := watchSeen[id]
		switch {
		case !okW:
			f.missed++
		case okT:
			delays = append(delays, max(w.Sub(t), 0))
		}
	}
	f.markers = len(registered)
	mu.Unlock()
	f.delayP50, f.delayMax = percentile(delays, 50), percentile(delays, 100)
	return f
}

// BenchmarkGreeterAgentLeaderDies kills the leader of a 3-server cluster
// when it is the agent a greeter process registered through, while a bot
// loop runs as in BenchmarkLeaderElection (given every server, a follower
// first). The greeter (register interval 500 ms, TTL 30 s: see
// productionTTL) registers through
// another agent during the election; after it the new leader marks its
// instance on the dead node critical, and the greeter is missing from the
// catalog until its registration through the other agent lands. Reported,
// per run:
//
//   - failed-calls: discovery calls of the bot loop that failed, from the
//     kill until 20 rounds after the greeter passes again as every running
//     agent reads;
//   - gap-s: from the first failed call to the last;
//   - election-s: from the kill to a new leader;
//   - back-s: from the kill to the greeter passing again.
//
// MICROBOT_BENCH_GREETER names a greeter binary to run instead of building
// examples/greeter (to measure another version of the registry, e.g. one
// built at an earlier commit). Each iteration starts its own cluster; run it
// a few times:
//
//	go test -run '^$' -bench GreeterAgentLeaderDies -benchtime 1x -count 3 ./framework/registry/consul/
func BenchmarkGreeterAgentLeaderDies(b *testing.B) {
	var failed int
	var gap, election, back time.Duration
	for range b.N {
		f, g, e, k := runGreeterAgentLeaderDies(b)
		b.Logf("failed calls %d, gap %v, election %v, back after %v", f, g, e, k)
		failed, gap, election, back = failed+f, gap+g, election+e, back+k
	}
	n := float64(b.N)
	b.ReportMetric(float64(failed)/n, "failed-calls")
	b.ReportMetric(gap.Seconds()/n, "gap-s")
	b.ReportMetric(election.Seconds()/n, "election-s")
	b.ReportMetric(back.Seconds()/n, "back-s")
}

func runGreeterAgentLeaderDies(b *testing.B) (failed int, gap, election, back time.Duration) {
	b.StopTimer()
	cl := consultest.StartCluster(b, 3)
	bin := os.Getenv("MICROBOT_BENCH_GREETER")
	if bin == "" {
		bin = testenv.Build(b, "github.com/microbot/microbot/examples/greeter")
	}
	leader, err := cl.WaitLeader()
	if err != nil {
		b.Fatal(err)
	}
	var follower *consultest.Agent
	for _, a := range cl.Agents {
		if a != leader {
			follower = a
		}
	}
	bot := newRegistry(b, consul.WithAddrs(others(cl, follower)...))
	startGreeter(b, bin, "greeter-1", strings.Join(others(cl, leader), ","), productionTTL)
	expectNodes(b, bot, greeterName, "greeter-1")
	loop := startBotLoop(b, bot)
	loop.waitCalls(b, nil, 3)

	b.StartTimer()
	killed := time.Now()
	if err := leader.Kill(); err != nil {
		b.Fatal(err)
	}
	if _, err := cl.WaitLeader(); err != nil {
		b.Fatal(err)
	}
	election = time.Since(killed)
	eventuallyWithin(b, clusterWait, "the greeter passing through another agent", func() error {
		for _, a := range cl.Agents {
			if a.Running() {
				if err := passingElsewhere(a, leader.Name(), "greeter-1"); err != nil {
					return fmt.Errorf("%s: %w", a.Name(), err)
				}
			}
		}
		return nil
	})
	back = time.Since(killed)
	before, _ := loop.counts()
	loop.waitCalls(b, before, 20)
	b.StopTimer()
	loop.end()

	loop.mu.Lock()
	defer loop.mu.Unlock()
	var first, last time.Time
	for _, at := range loop.failedAt {
		if at.Before(killed) {
			continue
		}
		if failed++; first.IsZero() {
			first = at
		}
		last = at
	}
	return failed, last.Sub(first), election, back
}
