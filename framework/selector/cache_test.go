package selector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/internal/testenv"
)

const wait = 20 * time.Second // the longest any condition is waited for

var quiet = slog.New(slog.DiscardHandler)

func register(t testing.TB, r registry.Registry, name string, ids ...string) {
	t.Helper()
	s := &registry.Service{Name: name, Version: "1"}
	for i, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{ID: id, Address: fmt.Sprintf("127.0.0.1:%d", 40000+i)})
	}
	if err := r.Register(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func deregister(t testing.TB, r registry.Registry, name string, ids ...string) {
	t.Helper()
	s := &registry.Service{Name: name}
	for _, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{ID: id})
	}
	if err := r.Deregister(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func newSel(t testing.TB, r registry.Registry, opts ...Option) *cache {
	t.Helper()
	s := New(r, append([]Option{WithLogger(quiet)}, opts...)...).(*cache)
	t.Cleanup(func() { s.Close() })
	return s
}

// all returns the IDs Next yields for one Select, until ErrNoneAvailable.
func all(t testing.TB, s Selector, service string) []string {
	t.Helper()
	next, err := s.Select(context.Background(), service)
	if err != nil {
		t.Fatalf("Select(%q): %v", service, err)
	}
	var ids []string
	for {
		n, err := next()
		if errors.Is(err, ErrNoneAvailable) {
			return ids
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		ids = append(ids, n.ID)
	}
}

func TestStrategyNames(t *testing.T) {
	for _, st := range []Strategy{Random(), RoundRobin()} {
		s := New(memory.New(), WithStrategy(st))
		if s.String() != st.String() {
			t.Errorf("selector with strategy %s names itself %s", st, s)
		}
		s.Close()
	}
	if got := New(memory.New()); got.String() != "random" {
		t.Fatalf("default strategy %s, want random", got)
	}
}

func TestUnknownService(t *testing.T) {
	s := newSel(t, memory.New())
	_, err := s.Select(context.Background(), "nope")
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Select(unknown) = %v, want an error wrapping registry.ErrNotFound", err)
	}
}

func TestEachNodeOnce(t *testing.T) {
	for _, st := range []Strategy{Random(), RoundRobin()} {
		t.Run(st.String(), func(t *testing.T) {
			r := memory.New()
			register(t, r, "svc", "a", "b", "c", "d", "e")
			register(t, r, "svc", "a") // the same node again is one node
			s := newSel(t, r, WithStrategy(st))
			s.Mark("svc", &registry.Node{ID: "c"}, errors.New("refused"))
			for range 20 {
				ids := all(t, s, "svc")
				if got := slices.Sorted(slices.Values(ids)); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
					t.Fatalf("one Select yielded %v, want each node once", ids)
				}
			}
		})
	}
}

// firsts counts the first node of n Selects.
func firsts(t *testing.T, s Selector, service string, n int) (counts map[string]int, seq []string) {
	t.Helper()
	counts = map[string]int{}
	for range n {
		next, err := s.Select(context.Background(), service)
		if err != nil {
			t.Fatal(err)
		}
		node, err := next()
		if err != nil {
			t.Fatal(err)
		}
		counts[node.ID]++
		seq = append(seq, node.ID)
	}
	return counts, seq
}

func TestRandomSpreads(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a", "b", "c")
	s := newSel(t, r)
	counts, _ := firsts(t, s, "svc", 3000)
	// 1000 expected each; the standard deviation is about 26, so a count
	// outside 700-1300 means the choice is not random.
	for _, id := range []string{"a", "b", "c"} {
		if c := counts[id]; c < 700 || c > 1300 {
			t.Errorf("node %s first %d times out of 3000: %v", id, c, counts)
		}
	}
}

func TestRoundRobinAlternates(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a", "b", "c")
	s := newSel(t, r, WithStrategy(RoundRobin()))
	counts, seq := firsts(t, s, "svc", 300)
	for i := 3; i < len(seq); i++ {
		if seq[i] != seq[i-3] || seq[i] == seq[i-1] {
			t.Fatalf("first nodes do not cycle: %v", seq[:min(len(seq), 12)])
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if counts[id] != 100 {
			t.Fatalf("first-node counts %v, want 100 each", counts)
		}
	}
	// And each Select goes on around the ring.
	ids := all(t, s, "svc")
	i := slices.Index([]string{"a", "b", "c"}, ids[0])
	if want := []string{"a", "b", "c", "a", "b"}[i : i+3]; !slices.Equal(ids, want) {
		t.Fatalf("Select yields %v, want %v", ids, want)
	}
}

// A watch event makes a Select see a change at once, long before the cache
// TTL.
func TestWatchInvalidates(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a")
	s := newSel(t, r, WithCacheTTL(time.Hour))
	if ids := all(t, s, "svc"); !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("got %v", ids)
	}
	register(t, r, "svc", "b")
	testenv.Eventually(t, wait, "new node b seen", func() bool {
		return slices.Equal(slices.Sorted(slices.Values(all(t, s, "svc"))), []string{"a", "b"})
	})
	deregister(t, r, "svc", "a")
	testenv.Eventually(t, wait, "node a gone", func() bool { return slices.Equal(all(t, s, "svc"), []string{"b"}) })
	deregister(t, r, "svc", "b")
	testenv.Eventually(t, wait, "service gone", func() bool {
		_, err := s.Select(context.Background(), "svc")
		return errors.Is(err, registry.ErrNotFound)
	})
}

// faulty is a real registry with faults switched on by the tests: lookups
// failing as if it were unreachable, watches failing to start or breaking.
type faulty struct {
	registry.Registry
	down       atomic.Bool  // GetService fails
	watchFails atomic.Int32 // so many more Watch calls fail
	watches    atomic.Int32 // Watch calls that succeeded
	lookups    atomic.Int32 // GetService calls
}

var errUnreachable = errors.New("connection refused")

func (f *faulty) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	f.lookups.Add(1)
	if f.down.Load() {
		return nil, errUnreachable
	}
	return f.Registry.GetService(ctx, name)
}

func (f *faulty) Watch(ctx context.Context, opts ...registry.WatchOption) (registry.Watcher, error) {
	if f.watchFails.Add(-1) >= 0 {
		return nil, errUnreachable
	}
	f.watches.Add(1)
	return f.Registry.Watch(ctx, opts...)
}

// Without a watch, the cache TTL still brings changes in.
func TestCacheTTLFallback(t *testing.T) {
	f := &faulty{Registry: memory.New()}
	f.watchFails.Store(1 << 30) // never watches
	register(t, f, "svc", "a")
	s := newSel(t, f, WithCacheTTL(100*time.Millisecond))
	if ids := all(t, s, "svc"); !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("got %v", ids)
	}
	register(t, f, "svc", "b")
	testenv.Eventually(t, wait, "node b seen after the cache TTL", func() bool { return len(all(t, s, "svc")) == 2 })
}

// Within the cache TTL, a Select does not ask the registry.
func TestCached(t *testing.T) {
	f := &faulty{Registry: memory.New()}
	register(t, f, "svc", "a", "b")
	s := newSel(t, f, WithCacheTTL(time.Hour))
	all(t, s, "svc") // starts the watch
	testenv.Eventually(t, wait, "the watch running", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.watcher != nil
	})
	all(t, s, "svc") // the start of the watch made the list stale
	before := f.lookups.Load()
	for range 100 {
		all(t, s, "svc")
	}
	if n := f.lookups.Load() - before; n != 0 {
		t.Fatalf("100 Selects made %d registry lookups, want 0", n)
	}
}

// When the registry cannot be reached, the last known nodes are used.
func TestRegistryOutage(t *testing.T) {
	f := &faulty{Registry: memory.New()}
	register(t, f, "svc", "a", "b")
	s := newSel(t, f, WithCacheTTL(time.Hour))
	s.staleRetry = 10 * time.Millisecond
	all(t, s, "svc")
	f.down.Store(true)
	s.invalidate("svc") // as a watch event would
	for range 5 {
		if ids := all(t, s, "svc"); !slices.Equal(slices.Sorted(slices.Values(ids)), []string{"a", "b"}) {
			t.Fatalf("during the outage Select yields %v, want the last known a, b", ids)
		}
		time.Sleep(15 * time.Millisecond) // past staleRetry: the registry is asked again, and fails
	}
	// A service never seen cannot be served.
	if _, err := s.Select(context.Background(), "other"); !errors.Is(err, errUnreachable) {
		t.Fatalf("Select(other) during the outage = %v, want the registry's error", err)
	}
	// Back: changes show again.
	register(t, f, "svc", "c")
	f.down.Store(false)
	testenv.Eventually(t, wait, "node c seen after the outage", func() bool { return len(all(t, s, "svc")) == 3 })
}

// A watch that cannot start or breaks is restarted.
func TestWatchRestarts(t *testing.T) {
	f := &faulty{Registry: memory.New()}
	f.watchFails.Store(3)
	register(t, f, "svc", "a")
	s := New(f, WithCacheTTL(time.Hour), WithLogger(quiet)).(*cache)
	defer s.Close()
	s.backoffMin, s.backoffMax = time.Millisecond, 10*time.Millisecond
	all(t, s, "svc")
	testenv.Eventually(t, wait, "the watch running after 3 failures", func() bool { return f.watches.Load() == 1 })

	// Break the running watch: it is restarted, and events flow again.
	s.mu.Lock()
	w := s.watcher
	s.mu.Unlock()
	if w == nil {
		t.Fatal("no watcher")
	}
	w.Stop()
	testenv.Eventually(t, wait, "the watch restarted", func() bool { return f.watches.Load() == 2 })
	register(t, f, "svc", "b")
	testenv.Eventually(t, wait, "node b seen through the new watch", func() bool { return len(all(t, s, "svc")) == 2 })
}

func TestFailedNodeAvoided(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a", "b", "c")
	s := newSel(t, r, WithAvoidFor(time.Hour))
	a := &registry.Node{ID: "a"}
	s.Mark("svc", a, errors.New("connection refused"))
	for range 200 {
		ids := all(t, s, "svc")
		if ids[0] == "a" || ids[2] != "a" {
			t.Fatalf("with a failed, Select yields %v, want a last", ids)
		}
	}
	// A success ends it.
	s.Mark("svc", a, nil)
	counts, _ := firsts(t, s, "svc", 300)
	if counts["a"] == 0 {
		t.Fatalf("a never first after a success: %v", counts)
	}
	// All failing: all are still tried, the longest failed first.
	for _, id := range []string{"b", "c", "a"} {
		s.Mark("svc", &registry.Node{ID: id}, errors.New("refused"))
		time.Sleep(time.Millisecond)
	}
	if ids := all(t, s, "svc"); !slices.Equal(ids, []string{"b", "c", "a"}) {
		t.Fatalf("all failing: Select yields %v, want b c a", ids)
	}
}

func TestFailedNodeRecovers(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a", "b")
	s := newSel(t, r, WithAvoidFor(50*time.Millisecond), WithStrategy(RoundRobin()))
	s.Mark("svc", &registry.Node{ID: "a"}, errors.New("refused"))
	if ids := all(t, s, "svc"); ids[0] != "b" {
		t.Fatalf("a failed, Select yields %v", ids)
	}
	testenv.Eventually(t, wait, "a first again once AvoidFor passed", func() bool { return all(t, s, "svc")[0] == "a" })
}

func TestClose(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a")
	s := New(r)
	all(t, s, "svc")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close() // twice is fine
	if _, err := s.Select(context.Background(), "svc"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Select after Close = %v, want ErrClosed", err)
	}
}

// The Nodes handed out are copies.
func TestNodesAreCopies(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a")
	s := newSel(t, r, WithCacheTTL(time.Hour))
	next, _ := s.Select(context.Background(), "svc")
	n, _ := next()
	n.Address = "changed:1"
	next, _ = s.Select(context.Background(), "svc")
	if n, _ := next(); n.Address == "changed:1" {
		t.Fatal("changing a node changed the cache")
	}
}

// Many goroutines select and mark while the service changes (run with -race).
func TestConcurrent(t *testing.T) {
	r := memory.New()
	register(t, r, "svc", "a", "b", "c")
	s := newSel(t, r, WithAvoidFor(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			id := fmt.Sprintf("x%d", i%5)
			register(t, r, "svc", id)
			deregister(t, r, "svc", id)
		}
	})
	var sel sync.WaitGroup
	for g := range 8 {
		sel.Go(func() {
			for i := range 300 {
				next, err := s.Select(context.Background(), "svc")
				if err != nil {
					t.Error(err)
					return
				}
				seen := map[string]bool{}
				for {
					n, err := next()
					if err != nil {
						break
					}
					if seen[n.ID] {
						t.Errorf("node %s twice in one Select", n.ID)
					}
					seen[n.ID] = true
					var callErr error
					if (g+i)%3 == 0 {
						callErr = errors.New("refused")
					}
					s.Mark("svc", n, callErr)
				}
			}
		})
	}
	sel.Wait()
	cancel()
	wg.Wait()
}

// TestSelectVersions: the nodes of each version come apart, each in the
// order Select would try them (a failed node last), and a version change
// is seen once the watch reports it.
func TestSelectVersions(t *testing.T) {
	r := memory.New()
	reg := func(version string, ids ...string) {
		s := &registry.Service{Name: "topic:x", Version: version}
		for i, id := range ids {
			s.Nodes = append(s.Nodes, &registry.Node{ID: id, Address: fmt.Sprintf("127.0.0.1:%d", 41000+i)})
		}
		if err := r.Register(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	reg("ff.http.broadcast", "b1", "b2")
	reg("workers", "w1", "w2", "w3")
	s := newSel(t, r, WithStrategy(RoundRobin()))
	ids := func(next Next) []string {
		var out []string
		for n, err := next(); err == nil; n, err = next() {
			out = append(out, n.ID)
		}
		return out
	}
	s.Mark("topic:x", &registry.Node{ID: "w1"}, errors.New("refused"))
	got, err := s.SelectVersions(context.Background(), "topic:x")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("versions %v, want 2", slices.Collect(maps.Keys(got)))
	}
	b := ids(got["ff.http.broadcast"])
	slices.Sort(b)
	if !slices.Equal(b, []string{"b1", "b2"}) {
		t.Errorf("broadcast nodes %v", b)
	}
	if w := ids(got["workers"]); len(w) != 3 || w[2] != "w1" {
		t.Errorf("workers %v, want the failed w1 last", w)
	}
	if _, err := s.SelectVersions(context.Background(), "topic:none"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("SelectVersions of an unknown service = %v, want ErrNotFound", err)
	}
	reg("auditors", "a1")
	testenv.Eventually(t, wait, "the new version is seen", func() bool {
		got, err := s.SelectVersions(context.Background(), "topic:x")
		return err == nil && len(got) == 3 && len(ids(got["auditors"])) == 1
	})
}
