package consul_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/testenv"
)

// clusterWait bounds the waits of the cluster tests: an election at
// Consul's default timing takes 10-25 s, and a registration made while the
// cluster had no leader reaches the catalog at the agent's next sync retry
// (15-30 s later).
const clusterWait = 2 * time.Minute

// botLoop does what a bot's users do, over and over, through the framework:
// list services, get service, and query the greeter from a freshly started
// client (its own selector, no cache: as a bot that just started). It
// records every failed call.
type botLoop struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	calls    map[string]int
	failures []string
	failedAt []time.Time
}

func startBotLoop(t testing.TB, reg registry.Registry) *botLoop {
	l := &botLoop{stop: make(chan struct{}), done: make(chan struct{}), calls: map[string]int{}}
	ops := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"list", func(ctx context.Context) error {
			list, err := reg.ListServices(ctx)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(list, func(s *registry.Service) bool { return s.Name == greeterName }) {
				return fmt.Errorf("ListServices has no %s: %d services", greeterName, len(list))
			}
			return nil
		}},
		{"get", func(ctx context.Context) error {
			svcs, err := reg.GetService(ctx, greeterName)
			if err != nil {
				return err
			}
			if ids := nodeIDs(svcs); len(ids) == 0 {
				return fmt.Errorf("GetService(%s) without nodes", greeterName)
			}
			return nil
		}},
		{"query", func(ctx context.Context) error {
			c, err := client.New(client.WithRegistry(reg))
			if err != nil {
				return err
			}
			defer c.Close()
			return hello(ctx, c, "loop", client.WithIdempotent())
		}},
	}
	go func() {
		defer close(l.done)
		for {
			for _, op := range ops {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				start := time.Now()
				err := op.do(ctx)
				cancel()
				l.mu.Lock()
				l.calls[op.name]++
				if err != nil {
					l.failedAt = append(l.failedAt, start)
					l.failures = append(l.failures, fmt.Sprintf("%s at %s (%v): %v", op.name, start.Format("15:04:05.000"), time.Since(start).Round(time.Millisecond), err))
				}
				l.mu.Unlock()
			}
			select {
			case <-l.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(l.end)
	return l
}

// end stops the loop and waits for it.
func (l *botLoop) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// counts returns the calls made per operation and the failures so far.
func (l *botLoop) counts() (map[string]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.calls), slices.Clone(l.failures)
}

// others returns the cluster's agents' addresses with first's first.
func others(cl *consultest.Cluster, first *consultest.Agent) []string {
	addrs := []string{first.Addr()}
	for _, a := range cl.Agents {
		if a != first {
			addrs = append(addrs, a.Addr())
		}
	}
	return addrs
}

// waitCalls waits until the loop has made n more calls of every kind than
// in before, so a phase of the test is known to have been exercised.
func (l *botLoop) waitCalls(t testing.TB, before map[string]int, n int) {
	t.Helper()
	eventuallyWithin(t, clusterWait, fmt.Sprintf("%d more calls of each kind", n), func() error {
		now, _ := l.counts()
		for _, op := range []string{"list", "get", "query"} {
			if now[op]-before[op] < n {
				return fmt.Errorf("calls %v, before %v", now, before)
			}
		}
		return nil
	})
}

// TestClusterElections runs a real 3-server cluster. The bot's registry is
// given every server, the leader first; a greeter process registers through
// a follower. While a bot loop (list, get, query) and a watcher run:
//
//  1. the leader is killed: no discovery call fails during the election, and
//     the watcher sees a change made during the election and changes made
//     after it;
//  2. the leader comes back and the cluster heals;
//  3. the agent the greeter registered through is killed: the greeter
//     registers through another and stays passing, calls go on;
//  4. it comes back, and reads through it alone work.
func TestClusterElections(t *testing.T) {
	cl := consultest.StartCluster(t, 3)
	bin := testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	leader, err := cl.WaitLeader()
	if err != nil {
		t.Fatal(err)
	}
	var via *consultest.Agent // the greeter's agent: a follower
	for _, a := range cl.Agents {
		if a != leader {
			via = a
			break
		}
	}
	t.Logf("leader %s; the greeter registers through %s", leader.Name(), via.Name())
	bot := newRegistry(t, consul.WithAddrs(others(cl, leader)...))
	w, err := bot.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ws := follow(t, w)
	startGreeter(t, bin, "greeter-1", strings.Join(others(cl, via), ","))
	expectNodes(t, bot, greeterName, "greeter-1")
	ws.expect(t, "greeter-1")
	loop := startBotLoop(t, bot)
	loop.waitCalls(t, nil, 3)

	// 1. The leader dies. A change made during the election through
	// another server: it reaches the catalog once there is a leader again.
	const marker = "elect.marker"
	var changer *consultest.Agent // neither the leader nor the greeter's agent
	for _, a := range cl.Agents {
		if a != leader && a != via {
			changer = a
		}
	}
	changes := newRegistry(t, consul.WithAddrs(changer.Addr()), consul.WithTimeout(wait))
	before, _ := loop.counts()
	killed := time.Now()
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := changes.Register(ctxT(t), greeter(marker, "1", "m-1")); err != nil {
		t.Fatalf("register during the election: %v", err)
	}
	newLeader, err := cl.WaitLeader()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s leads %v after the kill", newLeader.Name(), time.Since(killed).Round(time.Millisecond))
	loop.waitCalls(t, before, 3)
	ws.expectService(t, marker, clusterWait, "m-1")
	// Changes after the election.
	if err := changes.Register(ctxT(t), greeter(marker, "1", "m-2")); err != nil {
		t.Fatal(err)
	}
	if err := changes.Deregister(ctxT(t), greeter(marker, "1", "m-1")); err != nil {
		t.Fatal(err)
	}
	ws.expectService(t, marker, clusterWait, "m-2")

	// 2. The old leader comes back.
	if err := leader.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitHealthy(); err != nil {
		t.Fatal(err)
	}

	// 3. The greeter's agent dies: the greeter registers through another
	// one and its instance there passes. It is made a follower first (it
	// may have won the election): when the agent that dies is also the
	// leader, the greeter's registration through another agent is made
	// while there is no leader, and Consul syncs it into the catalog only
	// at the agent's next retry, 15-30 s later (see the package's note on
	// elections).
	if err := cl.MoveLeadershipFrom(via); err != nil {
		t.Fatal(err)
	}
	before, _ = loop.counts()
	if err := via.Kill(); err != nil {
		t.Fatal(err)
	}
	direct, err := newLeaderClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, clusterWait, "the greeter passing through another agent", func() error {
		entries, _, err := direct.Health().Service(greeterName, "", true, &api.QueryOptions{AllowStale: true})
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Node.Node != via.Name() && e.Service.ID == "greeter-1" {
				return nil
			}
		}
		return fmt.Errorf("passing instances %v", instances(entries))
	})
	loop.waitCalls(t, before, 3)
	if err := changes.Register(ctxT(t), greeter(marker, "1", "m-2", "m-3")); err != nil {
		t.Fatal(err)
	}
	ws.expectService(t, marker, clusterWait, "m-2", "m-3")

	// 4. It comes back; reads through it alone work.
	if err := via.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitHealthy(); err != nil {
		t.Fatal(err)
	}
	expectNodes(t, newRegistry(t, consul.WithAddrs(via.Addr())), marker, "m-2", "m-3")
	before, _ = loop.counts()
	loop.waitCalls(t, before, 3)

	loop.end()
	calls, failures := loop.counts()
	t.Logf("discovery calls made by the bot loop: %v", calls)
	if len(failures) > 0 {
		t.Errorf("%d discovery calls failed, want none:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	ws.expect(t, "greeter-1")
}

// newLeaderClient returns a Consul API client of the cluster's leader.
func newLeaderClient(cl *consultest.Cluster) (*api.Client, error) {
	leader, err := cl.WaitLeader()
	if err != nil {
		return nil, err
	}
	return leader.API()
}

// instances lists entries as "id@node".
func instances(entries []*api.ServiceEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Service.ID+"@"+e.Node.Node)
	}
	return out
}
