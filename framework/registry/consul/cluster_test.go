package consul_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
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
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/internal/testenv"
)

// clusterWait bounds the waits of the cluster tests: an election at
// Consul's default timing takes 10-25 s.
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
	errs     []error
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
				return fmt.Errorf("ListServices has no %s: %d services: %w", greeterName, len(list), registry.ErrNotFound)
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
					l.errs = append(l.errs, err)
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

// productionTTL gives a greeter process the default TTL (30 s) instead of
// the tests' 3 s, as in production: a TTL check that expires and passes
// again while its agent is held waiting for a leader makes the agent sync
// by itself, which would hide what the registry does.
const productionTTL = "MICRO_REGISTER_TTL=30s"

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
//  3. the agent the greeter registered through is killed while it leads
//     the cluster: the greeter registers through another during the
//     election, its registry confirms the instance reached the catalog and
//     registers it again until it has; calls find the greeter but for the
//     short window between the new leader marking the instance on the dead
//     node critical and the re-registration landing (see the assertion);
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
	g := startGreeter(t, bin, "greeter-1", strings.Join(others(cl, via), ","), productionTTL)
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

	// 3. The greeter's agent dies while it leads the cluster: the greeter
	// registers through another agent while there is no leader, so that
	// agent cannot sync it into the catalog; after the election the new
	// leader marks the instance on the dead agent's node critical, and
	// the greeter's registry, confirming its instance is in the catalog,
	// registers it again until it is.
	if err := cl.MoveLeadershipTo(via); err != nil {
		t.Fatal(err)
	}
	before, _ = loop.counts()
	killed = time.Now()
	if err := via.Kill(); err != nil {
		t.Fatal(err)
	}
	newLeader, err = cl.WaitLeader()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s leads %v after the greeter's agent, the leader, was killed", newLeader.Name(), time.Since(killed).Round(time.Millisecond))
	eventuallyWithin(t, clusterWait, "the greeter passing through another agent, as every running agent reads", func() error {
		for _, a := range cl.Agents {
			if a.Running() {
				if err := passingElsewhere(a, via.Name(), "greeter-1"); err != nil {
					return fmt.Errorf("%s: %w", a.Name(), err)
				}
			}
		}
		return nil
	})
	back := time.Now()
	t.Logf("the greeter passes through another agent %v after the kill", back.Sub(killed).Round(time.Millisecond))
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
	calls, _ := loop.counts()
	t.Logf("discovery calls made by the bot loop: %v", calls)
	// No discovery call may fail, but for the unavoidable window of
	// scenario 3: from the new leader marking the instance on the dead
	// leader's node critical (its first act) to the greeter's
	// registration through another agent reaching the catalog (the agent
	// syncs it when that leader takes its first write, or at the
	// greeter's next registration again). In that window a call may find
	// no greeter, and nothing else.
	var bad, gap []string
	var gapFrom, gapTo time.Time
	loop.mu.Lock()
	for i, at := range loop.failedAt {
		var re *rpcerr.Error
		absent := errors.Is(loop.errs[i], registry.ErrNotFound) || errors.As(loop.errs[i], &re) && re.Code == http.StatusNotFound
		if at.Before(killed) || at.After(back) || !absent {
			bad = append(bad, loop.failures[i])
			continue
		}
		gap = append(gap, loop.failures[i])
		if gapFrom.IsZero() {
			gapFrom = at
		}
		gapTo = at
	}
	loop.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d discovery calls failed outside the window where the greeter was re-registering, want none:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if len(gap) > 0 {
		t.Logf("%d discovery calls found no greeter, for %v, after the new leader marked its instance on the dead agent's node critical:\n%s",
			len(gap), gapTo.Sub(gapFrom).Round(time.Millisecond), strings.Join(gap, "\n"))
		// The window closes when the surviving agent syncs the greeter's
		// registration: at its own retry of the held write (0.4-2 s
		// after the election) or when the greeter's registry registers
		// it again — whichever comes first, so which one it was is only
		// logged; the bound asserted is the window itself (above).
		t.Logf("the greeter's registry registered it again: %v", strings.Contains(g.out.String(), "instance in Consul's catalog after registering it again"))
	}
	ws.expect(t, "greeter-1")
}

// passingElsewhere checks that the catalog, read through a, holds the
// instance id passing on a node other than dead.
func passingElsewhere(a *consultest.Agent, dead, id string) error {
	c, err := a.API()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	entries, _, err := c.Health().Service(greeterName, "", true, (&api.QueryOptions{AllowStale: true}).WithContext(ctx))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Node.Node != dead && e.Service.ID == id {
			return nil
		}
	}
	return fmt.Errorf("passing instances %v", instances(entries))
}

// instances lists entries as "id@node".
func instances(entries []*api.ServiceEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Service.ID+"@"+e.Node.Node)
	}
	return out
}
