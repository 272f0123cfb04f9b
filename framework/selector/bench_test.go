package selector

import (
	"context"
	"fmt"
	"testing"

	"github.com/microbot/microbot/framework/registry/memory"
)

// BenchmarkSelect measures a Select and its first Next on a cached list of
// 10 nodes, one goroutine and all of them.
func BenchmarkSelect(b *testing.B) {
	for _, st := range []Strategy{Random(), RoundRobin()} {
		r := memory.New()
		ids := make([]string, 10)
		for i := range ids {
			ids[i] = fmt.Sprintf("node-%d", i)
		}
		register(b, r, "svc", ids...)
		s := newSel(b, r)
		s.opts.Strategy = st
		ctx := context.Background()
		if _, err := s.Select(ctx, "svc"); err != nil {
			b.Fatal(err)
		}
		b.Run(st.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				next, err := s.Select(ctx, "svc")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := next(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(st.String()+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					next, err := s.Select(ctx, "svc")
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := next(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
