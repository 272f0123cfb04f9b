// Package registrytest is the conformance suite of registry.Registry. Every
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registry.Registry { return memory.New() })
//	}
//
// The suite pins down the contract the interface's comments leave open:
//
//   - Register validates its input (errors wrap registry.ErrInvalid and
//     change nothing) and adds or replaces nodes, keyed by service name and
//     node ID; Deregister removes nodes by name and ID.
//   - GetService returns one Service per version with its live nodes, its
//     metadata and its endpoints (request and response schemas with nested
//     values) exactly as registered; an unknown service is an error wrapping
//     registry.ErrNotFound. ListServices holds every name and version, sorted.
//   - Nodes registered with a TTL vanish when it passes without a new
//     Register, and a Register before then keeps them.
//   - A watcher sees exactly the changes made after Watch returned, as
//     registry.Diff defines them: create, update (nodes, metadata or
//     endpoints changed, or a node went while others stay), and delete with
//     the nodes that went, for deregistration and expiry alike. Registering
//     a node again unchanged (a TTL refresh) makes no event.
//   - Stop and the end of the Watch context unblock Next with an error
//     wrapping registry.ErrWatcherStopped.
//   - Nothing handed in or out shares memory with the registry's state.
//   - Many goroutines may register and deregister at once without losing or
//     corrupting an entry.
//
// The suite may run against a shared, real registry (a Consul agent): every
// subtest uses service names of its own, tolerates services it did not
// register, and deregisters what it registered. Reads after writes are
// polled until they hold or Options.Wait passes, so an eventually consistent
// registry passes too; nothing asserts how fast anything happens.
package registrytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
)

// Options tune the suite to the registry under test.
type Options struct {
	// TTL is the TTL of the nodes registered by the expiry tests. It must be
	// one the registry honours (Consul's checks are only as fine as about a
	// second). Default 2s.
	TTL time.Duration
	// Wait bounds every wait for a condition (a node to appear, expire, an
	// event to come). Default 20s.
	Wait time.Duration
	// Goroutines and NodesPerGoroutine size the concurrency test. Defaults
	// 8 and 10.
	Goroutines        int
	NodesPerGoroutine int
}

// Option sets an Options field.
type Option func(*Options)

// WithTTL sets the TTL the expiry tests use.
func WithTTL(d time.Duration) Option { return func(o *Options) { o.TTL = d } }

// WithWait sets how long the suite waits for a condition before failing.
func WithWait(d time.Duration) Option { return func(o *Options) { o.Wait = d } }

// WithConcurrency sizes the concurrency test: goroutines registering nodes
// nodes each.
func WithConcurrency(goroutines, nodes int) Option {
	return func(o *Options) { o.Goroutines, o.NodesPerGoroutine = goroutines, nodes }
}

// suite is the state one subtest works with.
type suite struct {
	t    *testing.T
	r    registry.Registry
	o    Options
	base string // prefix of this subtest's service names
}

// Run runs the conformance suite, one parallel subtest per property, each
// on a registry made by newRegistry.
func Run(t *testing.T, newRegistry func(t *testing.T) registry.Registry, opts ...Option) {
	o := Options{TTL: 2 * time.Second, Wait: 20 * time.Second, Goroutines: 8, NodesPerGoroutine: 10}
	for _, f := range opts {
		f(&o)
	}
	tests := []struct {
		name string
		fn   func(s *suite)
	}{
		{"RoundTrip", testRoundTrip},
		{"NodesAndVersions", testNodesAndVersions},
		{"RegisterAgainReplaces", testRegisterAgainReplaces},
		{"NotFound", testNotFound},
		{"InvalidRegister", testInvalidRegister},
		{"InvalidDeregister", testInvalidDeregister},
		{"TTLExpiry", testTTLExpiry},
		{"TTLRefresh", testTTLRefresh},
		{"Watch", testWatch},
		{"WatchService", testWatchService},
		{"WatchExpiry", testWatchExpiry},
		{"WatchStop", testWatchStop},
		{"DeepCopy", testDeepCopy},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the subtests share nothing; the TTL waits overlap
			tc.fn(&suite{t: t, r: newRegistry(t), o: o, base: "registrytest." + strings.ToLower(tc.name) + "." + randomID()})
		})
	}
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// name returns a service name of this subtest.
func (s *suite) name(suffix string) string { return s.base + "." + suffix }

func (s *suite) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
	s.t.Cleanup(cancel)
	return ctx
}

// register registers svc (which must be valid) and deregisters it when the
// test ends.
func (s *suite) register(svc *registry.Service, opts ...registry.RegisterOption) {
	s.t.Helper()
	if err := s.r.Register(s.ctx(), svc, opts...); err != nil {
		s.t.Fatalf("Register(%s): %v", svc.Name, err)
	}
	c := registry.CopyService(svc)
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
		defer cancel()
		_ = s.r.Deregister(ctx, c)
	})
}

func (s *suite) deregister(svc *registry.Service) {
	s.t.Helper()
	if err := s.r.Deregister(s.ctx(), svc); err != nil {
		s.t.Fatalf("Deregister(%s): %v", svc.Name, err)
	}
}

// eventually polls cond until it returns nil or Wait passes.
func (s *suite) eventually(what string, cond func() error) {
	s.t.Helper()
	deadline := time.Now().Add(s.o.Wait)
	delay := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: still not true after %v: %v", what, s.o.Wait, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// versions returns GetService(name) by version.
func (s *suite) versions(name string) (map[string]*registry.Service, error) {
	svcs, err := s.r.GetService(s.ctx(), name)
	if err != nil {
		return nil, err
	}
	m := map[string]*registry.Service{}
	for _, svc := range svcs {
		if svc.Name != name {
			return nil, fmt.Errorf("GetService(%q) returned service %q", name, svc.Name)
		}
		if _, dup := m[svc.Version]; dup {
			return nil, fmt.Errorf("GetService(%q) returned version %q twice", name, svc.Version)
		}
		m[svc.Version] = svc
	}
	return m, nil
}

// expectNodes polls until GetService(name) holds exactly want: version ->
// node IDs.
func (s *suite) expectNodes(name string, want map[string][]string) {
	s.t.Helper()
	s.eventually("nodes of "+name, func() error {
		got, err := s.versions(name)
		if err != nil {
			return err
		}
		return compareNodes(got, want)
	})
}

func compareNodes(got map[string]*registry.Service, want map[string][]string) error {
	g := map[string][]string{}
	for v, svc := range got {
		g[v] = nodeIDs(svc)
	}
	w := map[string][]string{}
	for v, ids := range want {
		w[v] = slices.Sorted(slices.Values(ids))
	}
	if !maps.EqualFunc(g, w, slices.Equal) {
		return fmt.Errorf("nodes by version: got %v, want %v", g, w)
	}
	return nil
}

// expectGone polls until GetService(name) fails with ErrNotFound.
func (s *suite) expectGone(name string) {
	s.t.Helper()
	s.eventually(name+" gone", func() error {
		svcs, err := s.r.GetService(s.ctx(), name)
		if errors.Is(err, registry.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("GetService error %w, want one wrapping registry.ErrNotFound", err)
		}
		return fmt.Errorf("still registered: %s", describe(svcs))
	})
}

func nodeIDs(svc *registry.Service) []string {
	ids := make([]string, 0, len(svc.Nodes))
	for _, n := range svc.Nodes {
		ids = append(ids, n.ID)
	}
	sort.Strings(ids)
	return ids
}

func describe(svcs []*registry.Service) string {
	var b strings.Builder
	for i, svc := range svcs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s@%q%v", svc.Name, svc.Version, nodeIDs(svc))
	}
	return b.String()
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v (%v)", v, err)
	}
	return string(b)
}

func describeResult(r *registry.Result) string {
	if r == nil || r.Service == nil {
		return fmt.Sprintf("%+v", r)
	}
	return r.Action + " " + describe([]*registry.Service{r.Service})
}

// node returns a node of service name with an address and metadata.
func node(name, id string, port int) *registry.Node {
	return &registry.Node{
		ID:       name + "-" + id,
		Address:  fmt.Sprintf("127.0.0.1:%d", port),
		Metadata: map[string]string{"transport": "http", "node": id},
	}
}

// fullService returns a service with everything a service can hold:
// metadata, endpoints with nested request and response schemas, and nodes
// with metadata.
func fullService(name, version string, nodes ...*registry.Node) *registry.Service {
	return &registry.Service{
		Name:     name,
		Version:  version,
		Metadata: map[string]string{"team": "ops", "build": "1234"},
		Endpoints: []*registry.Endpoint{
			{
				Name: "Say.Hello",
				Request: &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{
					{Name: "name", Type: "string"},
					{Name: "tags", Type: "[]string"},
					{Name: "address", Type: "Address", Values: []*registry.Value{
						{Name: "street", Type: "string"},
						{Name: "geo", Type: "Geo", Values: []*registry.Value{
							{Name: "lat", Type: "float64"},
							{Name: "lng", Type: "float64"},
						}},
					}},
				}},
				Response: &registry.Value{Name: "Response", Type: "Response", Values: []*registry.Value{
					{Name: "msg", Type: "string"},
				}},
				Metadata: map[string]string{"stream": "false"},
			},
			{
				Name:     "Say.Ping",
				Request:  &registry.Value{Name: "Ping", Type: "Ping"},
				Response: &registry.Value{Name: "Pong", Type: "Pong", Values: []*registry.Value{{Name: "count", Type: "int64"}}},
			},
		},
		Nodes: nodes,
	}
}

// only returns svc with just the given nodes, for Register and Deregister.
func only(svc *registry.Service, nodes ...*registry.Node) *registry.Service {
	c := registry.CopyService(svc)
	c.Nodes = nil
	for _, n := range nodes {
		c.Nodes = append(c.Nodes, registry.CopyNode(n))
	}
	return c
}

func testRoundTrip(s *suite) {
	name := s.name("greeter")
	want := fullService(name, "1.0.0", node(name, "a", 10001))
	s.register(want)

	s.eventually("GetService round trip", func() error {
		got, err := s.r.GetService(s.ctx(), name)
		if err != nil {
			return err
		}
		if len(got) != 1 || !registry.Equal(got[0], want) {
			return fmt.Errorf("GetService(%q):\n got  %s\n want %s", name, jsonString(got), jsonString([]*registry.Service{want}))
		}
		return nil
	})

	s.eventually("ListServices holds the service", func() error {
		list, err := s.r.ListServices(s.ctx())
		if err != nil {
			return err
		}
		if !sort.SliceIsSorted(list, func(i, j int) bool { return list[i].Name < list[j].Name }) {
			return fmt.Errorf("ListServices not sorted by name: %s", describe(list))
		}
		for _, svc := range list {
			if svc.Name == name && svc.Version == want.Version {
				return nil
			}
		}
		return fmt.Errorf("ListServices lacks %s@%s", name, want.Version)
	})

	s.deregister(want)
	s.expectGone(name)
	s.eventually("ListServices drops the service", func() error {
		list, err := s.r.ListServices(s.ctx())
		if err != nil {
			return err
		}
		for _, svc := range list {
			if svc.Name == name {
				return fmt.Errorf("ListServices still holds %s", name)
			}
		}
		return nil
	})
}

func testNodesAndVersions(s *suite) {
	name := s.name("multi")
	a, b, c, d, e := node(name, "a", 10001), node(name, "b", 10002), node(name, "c", 10003), node(name, "d", 10004), node(name, "e", 10005)
	v1 := fullService(name, "1.0.0")
	v2 := fullService(name, "2.0.0")
	v2.Endpoints = v2.Endpoints[:1]
	v2.Metadata = map[string]string{"team": "dev"}

	// One Register per node, as separate processes do, and one with several.
	s.register(only(v1, a))
	s.register(only(v1, b))
	s.register(only(v2, c))
	s.register(only(v2, d, e))
	s.expectNodes(name, map[string][]string{"1.0.0": {a.ID, b.ID}, "2.0.0": {c.ID, d.ID, e.ID}})

	got, err := s.versions(name)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, w := range []*registry.Service{v1, v2} {
		g := only(got[w.Version])
		if !registry.Equal(g, only(w)) {
			s.t.Errorf("version %s: got %s, want %s", w.Version, jsonString(g), jsonString(only(w)))
		}
	}

	s.deregister(only(v1, a))
	s.expectNodes(name, map[string][]string{"1.0.0": {b.ID}, "2.0.0": {c.ID, d.ID, e.ID}})
	s.deregister(only(v2, c, e)) // several at once
	s.expectNodes(name, map[string][]string{"1.0.0": {b.ID}, "2.0.0": {d.ID}})
	s.deregister(only(v1, b))
	s.expectNodes(name, map[string][]string{"2.0.0": {d.ID}})
	s.deregister(only(v2, d))
	s.expectGone(name)
}

func testRegisterAgainReplaces(s *suite) {
	name := s.name("again")
	a := node(name, "a", 10001)
	first := fullService(name, "1.0.0", a)
	s.register(first)
	s.expectNodes(name, map[string][]string{"1.0.0": {a.ID}})

	second := registry.CopyService(first)
	second.Metadata["build"] = "5678"
	second.Endpoints = second.Endpoints[1:]
	second.Nodes[0].Address = "127.0.0.1:10099"
	second.Nodes[0].Metadata["node"] = "changed"
	s.register(second)
	s.eventually("the second registration replaces the first", func() error {
		got, err := s.r.GetService(s.ctx(), name)
		if err != nil {
			return err
		}
		if len(got) != 1 || !registry.Equal(got[0], second) {
			return fmt.Errorf("got %s, want %s", jsonString(got), jsonString(second))
		}
		return nil
	})
}

func testNotFound(s *suite) {
	for _, name := range []string{s.name("never.registered"), s.name("other")} {
		_, err := s.r.GetService(s.ctx(), name)
		if !errors.Is(err, registry.ErrNotFound) {
			s.t.Errorf("GetService(%q) = %v, want an error wrapping registry.ErrNotFound", name, err)
		}
	}
}

func testInvalidRegister(s *suite) {
	name := s.name("bad")
	good := node(name, "good", 10001)
	tests := []struct {
		name string
		svc  *registry.Service
	}{
		{"nil service", nil},
		{"empty name", &registry.Service{Version: "1", Nodes: []*registry.Node{good}}},
		{"blank name", &registry.Service{Name: "  ", Nodes: []*registry.Node{good}}},
		{"no nodes", &registry.Service{Name: name}},
		{"nil node", &registry.Service{Name: name, Nodes: []*registry.Node{good, nil}}},
		{"node without id", &registry.Service{Name: name, Nodes: []*registry.Node{good, {Address: "127.0.0.1:1"}}}},
		{"node without address", &registry.Service{Name: name, Nodes: []*registry.Node{good, {ID: name + "-x"}}}},
		{"node id twice", &registry.Service{Name: name, Nodes: []*registry.Node{good, registry.CopyNode(good)}}},
		{"nil endpoint", &registry.Service{Name: name, Nodes: []*registry.Node{good}, Endpoints: []*registry.Endpoint{nil}}},
		{"endpoint without name", &registry.Service{Name: name, Nodes: []*registry.Node{good}, Endpoints: []*registry.Endpoint{{}}}},
	}
	for _, tc := range tests {
		s.t.Run(tc.name, func(t *testing.T) {
			err := s.r.Register(s.ctx(), tc.svc)
			if !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("Register = %v, want an error wrapping registry.ErrInvalid", err)
			}
			if tc.svc != nil && tc.svc.Name != "" {
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
					defer cancel()
					_ = s.r.Deregister(ctx, &registry.Service{Name: tc.svc.Name, Nodes: []*registry.Node{good}})
				})
			}
		})
	}
	// Nothing was registered, not even the good node next to a bad one.
	if _, err := s.r.GetService(s.ctx(), name); !errors.Is(err, registry.ErrNotFound) {
		s.t.Errorf("after invalid registrations GetService(%q) = %v, want ErrNotFound", name, err)
	}
}

func testInvalidDeregister(s *suite) {
	name := s.name("bad")
	a := node(name, "a", 10001)
	svc := fullService(name, "1", a)
	s.register(svc)
	s.expectNodes(name, map[string][]string{"1": {a.ID}})
	for _, tc := range []struct {
		name string
		svc  *registry.Service
	}{
		{"nil service", nil},
		{"empty name", &registry.Service{Nodes: []*registry.Node{a}}},
		{"no nodes", &registry.Service{Name: name}},
		{"node without id", &registry.Service{Name: name, Nodes: []*registry.Node{a, {Address: a.Address}}}},
	} {
		s.t.Run(tc.name, func(t *testing.T) {
			if err := s.r.Deregister(s.ctx(), tc.svc); !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("Deregister = %v, want an error wrapping registry.ErrInvalid", err)
			}
		})
	}
	// The node next to the bad one is still there.
	s.expectNodes(name, map[string][]string{"1": {a.ID}})
}

func testTTLExpiry(s *suite) {
	name := s.name("ttl")
	short, long := node(name, "short", 10001), node(name, "long", 10002)
	svc := fullService(name, "1")
	s.register(only(svc, long)) // no TTL: stays
	s.register(only(svc, short), registry.WithTTL(s.o.TTL))
	// Both are there (the short one may already be gone on a very slow
	// machine; that is checked below, not here).
	s.eventually("the long-lived node is there", func() error {
		got, err := s.versions(name)
		if err != nil {
			return err
		}
		if v := got["1"]; v == nil || !slices.Contains(nodeIDs(v), long.ID) {
			return fmt.Errorf("got %s", describe(slices.Collect(maps.Values(got))))
		}
		return nil
	})
	s.expectNodes(name, map[string][]string{"1": {long.ID}})

	other := s.name("ttl.only")
	s.register(fullService(other, "1", node(other, "x", 10003)), registry.WithTTL(s.o.TTL))
	s.expectGone(other)
}

func testTTLRefresh(s *suite) {
	name := s.name("refresh")
	n := node(name, "a", 10001)
	svc := fullService(name, "1", n)
	// Registering again before the TTL passes keeps the node: refresh every
	// quarter TTL for two TTLs; right after each refresh the node is there.
	end := time.Now().Add(2 * s.o.TTL)
	for time.Now().Before(end) {
		s.register(svc, registry.WithTTL(s.o.TTL))
		got, err := s.versions(name)
		if err != nil {
			// An eventually consistent registry may not show it yet.
			s.expectNodes(name, map[string][]string{"1": {n.ID}})
		} else if err := compareNodes(got, map[string][]string{"1": {n.ID}}); err != nil {
			s.t.Fatalf("right after a refresh: %v", err)
		}
		time.Sleep(s.o.TTL / 4)
	}
	s.expectGone(name) // and once the refreshes stop, it expires
}

// events reads a watcher in the background.
type events struct {
	s      *suite
	w      registry.Watcher
	prefix string // only results of services starting with it count
	ch     chan *registry.Result
	errc   chan error
}

// watch starts a watcher that keeps results of services whose names start
// with prefix.
func (s *suite) watch(prefix string, opts ...registry.WatchOption) *events {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.r.Watch(ctx, opts...)
	if err != nil {
		cancel()
		s.t.Fatalf("Watch: %v", err)
	}
	ev := &events{s: s, w: w, prefix: prefix, ch: make(chan *registry.Result, 1024), errc: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, err := w.Next()
			if err != nil {
				ev.errc <- err
				return
			}
			if r != nil && r.Service != nil && strings.HasPrefix(r.Service.Name, prefix) {
				ev.ch <- r
			}
		}
	}()
	s.t.Cleanup(func() {
		w.Stop()
		cancel()
		<-done
	})
	return ev
}

// next returns the next result, failing the test if none comes in time.
func (ev *events) next() *registry.Result {
	ev.s.t.Helper()
	select {
	case r := <-ev.ch:
		return r
	case err := <-ev.errc:
		ev.s.t.Fatalf("watcher broke: %v", err)
	case <-time.After(ev.s.o.Wait):
		ev.s.t.Fatalf("no watch event within %v", ev.s.o.Wait)
	}
	return nil
}

// expect fails unless the next result is action on name@version with
// exactly the given nodes.
func (ev *events) expect(action, name, version string, ids ...string) *registry.Result {
	ev.s.t.Helper()
	r := ev.next()
	want := fmt.Sprintf("%s %s@%q%v", action, name, version, slices.Sorted(slices.Values(ids)))
	if r.Action != action || r.Service.Name != name || r.Service.Version != version ||
		!slices.Equal(nodeIDs(r.Service), slices.Sorted(slices.Values(ids))) {
		ev.s.t.Fatalf("watch event: got %s, want %s", describeResult(r), want)
	}
	return r
}

func testWatch(s *suite) {
	name := s.name("watched")
	ev := s.watch(s.base)
	a, b, c := node(name, "a", 10001), node(name, "b", 10002), node(name, "c", 10003)
	v1 := fullService(name, "1")
	v2 := fullService(name, "2")

	s.register(only(v1, a))
	r := ev.expect(registry.Create, name, "1", a.ID)
	if !registry.Equal(r.Service, only(v1, a)) {
		s.t.Errorf("create event: got %s, want %s", jsonString(r.Service), jsonString(only(v1, a)))
	}

	// The service's metadata changes (while it has one node, so which
	// node's registration a registry takes the service's fields from does
	// not matter).
	v1.Metadata["build"] = "9999"
	s.register(only(v1, a))
	r = ev.expect(registry.Update, name, "1", a.ID)
	if r.Service.Metadata["build"] != "9999" {
		s.t.Errorf("update event after a metadata change has metadata %v", r.Service.Metadata)
	}

	s.register(only(v1, b))
	ev.expect(registry.Update, name, "1", a.ID, b.ID)

	// The same registration again (a TTL refresh) changes nothing: the next
	// event is the one of the change after it.
	s.register(only(v1, a))
	changed := registry.CopyNode(a)
	changed.Metadata["node"] = "changed"
	s.register(only(v1, changed))
	r = ev.expect(registry.Update, name, "1", a.ID, b.ID)
	for _, n := range r.Service.Nodes {
		if n.ID == a.ID && n.Metadata["node"] != "changed" {
			s.t.Errorf("update event holds node %s with metadata %v, want node=changed", n.ID, n.Metadata)
		}
	}

	s.register(only(v2, c))
	ev.expect(registry.Create, name, "2", c.ID)

	s.deregister(only(v1, changed))
	ev.expect(registry.Update, name, "1", b.ID) // a went, b stays

	s.deregister(only(v1, b))
	r = ev.expect(registry.Delete, name, "1", b.ID)
	if r.Service.Nodes[0].Address != b.Address {
		s.t.Errorf("delete event holds node %+v, want address %s", r.Service.Nodes[0], b.Address)
	}

	s.deregister(only(v2, c))
	ev.expect(registry.Delete, name, "2", c.ID)
}

func testWatchService(s *suite) {
	mine, other := s.name("mine"), s.name("other")
	ev := s.watch(s.base, registry.WithService(mine))
	s.register(fullService(other, "1", node(other, "a", 10001)))
	s.register(fullService(mine, "1", node(mine, "a", 10002)))
	ev.expect(registry.Create, mine, "1", mine+"-a")
	s.deregister(fullService(other, "1", node(other, "a", 10001)))
	s.deregister(fullService(mine, "1", node(mine, "a", 10002)))
	ev.expect(registry.Delete, mine, "1", mine+"-a")
}

func testWatchExpiry(s *suite) {
	name := s.name("expiring")
	ev := s.watch(s.base)
	stay, short := node(name, "stay", 10001), node(name, "short", 10002)
	svc := fullService(name, "1")
	s.register(only(svc, stay))
	ev.expect(registry.Create, name, "1", stay.ID)
	s.register(only(svc, short), registry.WithTTL(s.o.TTL))
	ev.expect(registry.Update, name, "1", stay.ID, short.ID)
	ev.expect(registry.Update, name, "1", stay.ID) // short expired

	alone := s.name("expiring.alone")
	x := node(alone, "x", 10003)
	s.register(fullService(alone, "1", x), registry.WithTTL(s.o.TTL))
	ev.expect(registry.Create, alone, "1", x.ID)
	ev.expect(registry.Delete, alone, "1", x.ID)
}

func testWatchStop(s *suite) {
	for _, how := range []string{"Stop", "context"} {
		s.t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := s.r.Watch(ctx)
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer w.Stop()
			errc := make(chan error, 1)
			go func() {
				for {
					if _, err := w.Next(); err != nil {
						errc <- err
						return
					}
				}
			}()
			if how == "Stop" {
				w.Stop()
				w.Stop() // twice is fine
			} else {
				cancel()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, registry.ErrWatcherStopped) {
					t.Fatalf("Next after %s = %v, want an error wrapping registry.ErrWatcherStopped", how, err)
				}
			case <-time.After(s.o.Wait):
				t.Fatalf("Next still blocked %v after %s", s.o.Wait, how)
			}
			if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
				t.Fatalf("Next again = %v, want ErrWatcherStopped", err)
			}
		})
	}
}

func testDeepCopy(s *suite) {
	name := s.name("copy")
	svc := fullService(name, "1", node(name, "a", 10001))
	want := registry.CopyService(svc)
	w1 := s.watch(s.base)
	w2 := s.watch(s.base)
	s.register(svc)

	// What was handed to Register is the caller's to change.
	mutate(svc)
	check := func(when string) {
		s.t.Helper()
		s.eventually(when, func() error {
			got, err := s.r.GetService(s.ctx(), name)
			if err != nil {
				return err
			}
			if len(got) != 1 || !registry.Equal(got[0], want) {
				return fmt.Errorf("registry state changed: got %s, want %s", jsonString(got), jsonString(want))
			}
			return nil
		})
	}
	check("after changing the registered service")

	// So is what GetService and ListServices return.
	got, err := s.r.GetService(s.ctx(), name)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, g := range got {
		mutate(g)
	}
	list, err := s.r.ListServices(s.ctx())
	if err != nil {
		s.t.Fatal(err)
	}
	for _, g := range list {
		mutate(g)
	}
	check("after changing what GetService and ListServices returned")

	// And what a watcher gets: another watcher's copy is intact.
	r1 := w1.expect(registry.Create, name, "1", want.Nodes[0].ID)
	mutate(r1.Service)
	r2 := w2.expect(registry.Create, name, "1", want.Nodes[0].ID)
	if !registry.Equal(r2.Service, want) {
		s.t.Errorf("a watcher's event changed with another's: got %s, want %s", jsonString(r2.Service), jsonString(want))
	}
	check("after changing a watch event")
}

// mutate changes everything reachable from svc.
func mutate(svc *registry.Service) {
	svc.Version += "-mutated"
	if svc.Metadata != nil {
		svc.Metadata["team"] = "mutated"
	}
	for _, e := range svc.Endpoints {
		e.Name += "-mutated"
		if e.Metadata != nil {
			e.Metadata["stream"] = "mutated"
		}
		for v := e.Request; v != nil; {
			v.Type += "-mutated"
			if len(v.Values) == 0 {
				break
			}
			v.Values[0].Name += "-mutated"
			v = v.Values[len(v.Values)-1]
		}
		if e.Response != nil {
			e.Response.Values = append(e.Response.Values, &registry.Value{Name: "extra"})
		}
	}
	for _, n := range svc.Nodes {
		n.Address = "mutated:1"
		if n.Metadata != nil {
			n.Metadata["node"] = "mutated"
		}
	}
	svc.Nodes = append(svc.Nodes, &registry.Node{ID: "mutated"})
}

func testConcurrent(s *suite) {
	name := s.name("busy")
	ev := s.watch(s.base)
	svc := fullService(name, "1")
	G, N := s.o.Goroutines, s.o.NodesPerGoroutine
	var want []string
	var wg sync.WaitGroup
	errc := make(chan error, G*N*2+G)
	for g := range G {
		for i := range N {
			if i%2 == 0 {
				want = append(want, fmt.Sprintf("%s-g%d-n%d", name, g, i))
			}
		}
		wg.Go(func() {
			ctx := s.ctx()
			var mine []*registry.Node
			for i := range N {
				n := node(name, fmt.Sprintf("g%d-n%d", g, i), 20000+g*N+i)
				mine = append(mine, n)
				if err := s.r.Register(ctx, only(svc, n)); err != nil {
					errc <- err
					return
				}
			}
			// Readers run alongside the writers.
			if _, err := s.r.ListServices(ctx); err != nil {
				errc <- err
			}
			for i, n := range mine {
				if i%2 == 1 {
					if err := s.r.Deregister(ctx, only(svc, n)); err != nil {
						errc <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		s.t.Errorf("concurrent Register/Deregister: %v", err)
	}
	s.t.Cleanup(func() {
		var all []*registry.Node
		for _, id := range want {
			all = append(all, &registry.Node{ID: id})
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Wait)
		defer cancel()
		_ = s.r.Deregister(ctx, only(svc, all...))
	})
	s.expectNodes(name, map[string][]string{"1": want})

	// Replaying the watch events gives the same state.
	var seen []string
	deadline := time.After(s.o.Wait)
	for !slices.Equal(seen, slices.Sorted(slices.Values(want))) {
		select {
		case r := <-ev.ch:
			switch r.Action {
			case registry.Create, registry.Update:
				seen = nodeIDs(r.Service)
			case registry.Delete:
				seen = nil
			}
		case err := <-ev.errc:
			s.t.Fatalf("watcher broke: %v", err)
		case <-deadline:
			s.t.Fatalf("watch events replayed give nodes %v, want %v", seen, slices.Sorted(slices.Values(want)))
		}
	}
}
