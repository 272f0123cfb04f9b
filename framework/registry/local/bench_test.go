package local

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
)

// fill registers services services of nodes nodes each, with endpoints.
func fill(b *testing.B, r registry.Registry, services, nodes int) {
	b.Helper()
	for i := range services {
		s := &registry.Service{
			Name: fmt.Sprintf("go.micro.srv.bench%03d", i), Version: "1.0.0",
			Metadata: map[string]string{"team": "bench"},
			Endpoints: []*registry.Endpoint{{
				Name:     "Say.Hello",
				Request:  &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{{Name: "name", Type: "string"}}},
				Response: &registry.Value{Name: "Response", Type: "Response", Values: []*registry.Value{{Name: "msg", Type: "string"}}},
			}},
		}
		for j := range nodes {
			s.Nodes = append(s.Nodes, &registry.Node{ID: fmt.Sprintf("%s-%d", s.Name, j), Address: fmt.Sprintf("127.0.0.1:%d", 10000+j), Metadata: map[string]string{"transport": "http"}})
		}
		if err := r.Register(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetService reads one service out of 100 (3 nodes each).
func BenchmarkGetService(b *testing.B) {
	r, err := New(WithDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	fill(b, r, 100, 3)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		svcs, err := r.GetService(ctx, "go.micro.srv.bench042")
		if err != nil || len(svcs[0].Nodes) != 3 {
			b.Fatal(svcs, err)
		}
	}
}

// BenchmarkListServices lists 100 services (3 nodes each).
func BenchmarkListServices(b *testing.B) {
	r, err := New(WithDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	fill(b, r, 100, 3)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if list, err := r.ListServices(ctx); err != nil || len(list) != 100 {
			b.Fatal(len(list), err)
		}
	}
}

// BenchmarkRegister measures a refresh: one node registered again.
func BenchmarkRegister(b *testing.B) {
	r, err := New(WithDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	fill(b, r, 100, 3)
	s := &registry.Service{Name: "go.micro.srv.refresh", Version: "1", Nodes: []*registry.Node{{ID: "n", Address: "127.0.0.1:1"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Register(ctx, s, registry.WithTTL(60e9)); err != nil {
			b.Fatal(err)
		}
	}
}

// commandLike returns a service shaped like a command service as the
// framework registers it: three endpoints with their schemas, one node.
func commandLike(i int) *registry.Service {
	field := func(name, typ string) *registry.Value { return &registry.Value{Name: name, Type: typ} }
	msg := func(name string, fields ...*registry.Value) *registry.Value {
		return &registry.Value{Name: name, Type: name, Values: fields}
	}
	stream := map[string]string{"stream": "false"}
	name := fmt.Sprintf("go.micro.bot.cmd%d", i)
	return &registry.Service{
		Name: name,
		Endpoints: []*registry.Endpoint{
			{Name: "Command.Exec", Request: msg("ExecRequest", field("args", "[]string")), Response: msg("ExecResponse", field("result", "bytes"), field("error", "string")), Metadata: stream},
			{Name: "Command.Help", Request: msg("HelpRequest"), Response: msg("HelpResponse", field("usage", "string"), field("description", "string")), Metadata: stream},
			{Name: "Debug.Health", Request: msg("HealthRequest"), Response: msg("HealthResponse", field("status", "string")), Metadata: stream},
		},
		Nodes: []*registry.Node{{
			ID: fmt.Sprintf("%s-%08x-d8d2-4a0c-b9aa-a67fef3d75e8", name, i), Address: fmt.Sprintf("127.0.0.1:%d", 20000+i),
			Metadata: map[string]string{"content_types": "application/json, application/protobuf", "server": "microbot", "transport": "http"},
		}},
	}
}

// fillCommands registers n command-like services in dir.
func fillCommands(b *testing.B, dir string, n int) {
	b.Helper()
	w, err := New(WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := w.Register(context.Background(), commandLike(i), registry.WithTTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}

// discover does what the bot does when it starts on a registry of n
// command services: watch, list, and look every one of them up.
func discover(b *testing.B, r *Registry, n int) registry.Watcher {
	b.Helper()
	ctx := context.Background()
	w, err := r.Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	list, err := r.ListServices(ctx)
	if err != nil || len(list) != n {
		b.Fatal(len(list), err)
	}
	for _, s := range list {
		if svcs, err := r.GetService(ctx, s.Name); err != nil || len(svcs[0].Nodes) != 1 {
			b.Fatal(svcs, err)
		}
	}
	return w
}

// heapLive returns the bytes of live heap objects after a collection.
func heapLive() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkDiscover1000 is the bot's start on a directory of 1,000 command
// services: a new Registry, a watch, the list, and a GetService of each.
// B/op is the garbage of it all; MB-live is what the Registry keeps while
// the watch runs (its cache and the watch's snapshot).
func BenchmarkDiscover1000(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	fillCommands(b, dir, n)

	before := heapLive()
	r, err := New(WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	w := discover(b, r, n)
	live := float64(heapLive()-min(before, heapLive())) / 1e6
	w.Stop()

	b.ReportAllocs()
	for b.Loop() {
		r, err := New(WithDir(dir))
		if err != nil {
			b.Fatal(err)
		}
		discover(b, r, n).Stop()
	}
	b.ReportMetric(live, "MB-live")
}

// BenchmarkGetService1000 reads one service out of 1,000 while a watch
// runs, as the bot's command watcher does after every change.
func BenchmarkGetService1000(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	fillCommands(b, dir, n)
	r, err := New(WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	w := discover(b, r, n)
	defer w.Stop()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if svcs, err := r.GetService(ctx, "go.micro.bot.cmd777"); err != nil || len(svcs[0].Nodes) != 1 {
			b.Fatal(svcs, err)
		}
	}
}

// BenchmarkRescan1000 is one rescan of the watch over 1,000 unchanged
// services (the poll every PollInterval, or any change notification).
func BenchmarkRescan1000(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	fillCommands(b, dir, n)
	r, err := New(WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	w := discover(b, r, n)
	defer w.Stop()
	r.hubMu.Lock()
	h := r.hub
	r.hubMu.Unlock()
	b.ReportAllocs()
	for b.Loop() {
		h.mu.Lock()
		h.rescanLocked()
		h.mu.Unlock()
	}
}

// BenchmarkRefresh1000 is the update of the watch after a change
// notification about one node file among 1,000 (here, a refresh that
// changed nothing but the expiry).
func BenchmarkRefresh1000(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	fillCommands(b, dir, n)
	r, err := New(WithDir(dir), WithPolling(), WithPollInterval(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	w := discover(b, r, n)
	defer w.Stop()
	r.hubMu.Lock()
	h := r.hub
	r.hubMu.Unlock()
	other, err := New(WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	s := commandLike(777)
	name := fileName(s.Name, s.Nodes[0].ID)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := other.Register(ctx, s, registry.WithTTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		h.mu.Lock()
		h.mark(name)
		h.updateLocked()
		h.mu.Unlock()
	}
}
