package local

import (
	"context"
	"fmt"
	"testing"

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
	r, err := New(Dir(b.TempDir()))
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
	r, err := New(Dir(b.TempDir()))
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
	r, err := New(Dir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	fill(b, r, 100, 3)
	s := &registry.Service{Name: "go.micro.srv.refresh", Version: "1", Nodes: []*registry.Node{{ID: "n", Address: "127.0.0.1:1"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Register(ctx, s, registry.RegisterTTL(60e9)); err != nil {
			b.Fatal(err)
		}
	}
}
