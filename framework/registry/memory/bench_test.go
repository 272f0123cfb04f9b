package memory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
)

// BenchmarkGetService reads one service out of 100 (3 nodes each).
func BenchmarkGetService(b *testing.B) {
	r := memory.New()
	for i := range 100 {
		s := &registry.Service{Name: fmt.Sprintf("svc%03d", i), Version: "1"}
		for j := range 3 {
			s.Nodes = append(s.Nodes, &registry.Node{ID: fmt.Sprintf("n%d", j), Address: "127.0.0.1:1"})
		}
		if err := r.Register(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.GetService(ctx, "svc042"); err != nil {
			b.Fatal(err)
		}
	}
}
