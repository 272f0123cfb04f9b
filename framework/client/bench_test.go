package client_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/server"
)

type Echo struct{}

func (Echo) Echo(ctx context.Context, req, rsp *wrapperspb.StringValue) error {
	rsp.Value = req.Value
	return nil
}

// BenchmarkCall measures one unary call, client and server in this
// process over loopback (bench/cmd/rpcbench compares it with gRPC).
func BenchmarkCall(b *testing.B) {
	for _, ct := range []string{"application/protobuf", "application/json"} {
		b.Run(ct, func(b *testing.B) {
			s, err := server.New(server.WithName("bench.echo"))
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Handle(Echo{}); err != nil {
				b.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer s.Stop(context.Background()) //nolint:errcheck
			c, err := client.New(client.WithDefaultCallOptions(client.WithContentType(ct)))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			opt := client.WithAddress(s.Address())
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					var rsp wrapperspb.StringValue
					if err := c.Call(ctx, "bench.echo", "Echo.Echo", &wrapperspb.StringValue{Value: "hello"}, &rsp, opt); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
