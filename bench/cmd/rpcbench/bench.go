package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/server"
)

// caller makes one call and checks its answer.
type caller func(ctx context.Context, msg string) error

// system is one RPC stack under test.
type system struct {
	name  string
	call  caller
	close func()
}

// Echo is our handler.
type Echo struct{}

// Echo answers the request's value.
func (Echo) Echo(ctx context.Context, req *wrapperspb.StringValue, rsp *wrapperspb.StringValue) error {
	rsp.Value = req.Value
	return nil
}

// startOurs serves Echo and returns a caller of it: straight to the
// server's address, or, with discovery, through a memory registry and the
// default selector.
func startOurs(maxConc int, discovery bool) (*system, error) {
	reg := memory.New()
	srv, err := server.New(server.WithName("bench.echo"), server.WithRegistry(reg))
	if err != nil {
		return nil, err
	}
	if err := srv.Handle(Echo{}); err != nil {
		return nil, err
	}
	if err := srv.Start(context.Background()); err != nil {
		return nil, err
	}
	addr := srv.Address()
	c, err := client.New(client.WithPoolSize(maxConc), client.WithDefaultCallOptions(client.WithContentType("application/protobuf")), client.WithRegistry(reg))
	if err != nil {
		return nil, err
	}
	var opts []client.CallOption
	if !discovery {
		opts = append(opts, client.WithAddress(addr))
	}
	call := func(ctx context.Context, msg string) error {
		var rsp wrapperspb.StringValue
		if err := c.Call(ctx, "bench.echo", "Echo.Echo", &wrapperspb.StringValue{Value: msg}, &rsp, opts...); err != nil {
			return err
		}
		if rsp.Value != msg {
			return fmt.Errorf("ours: echoed %q, want %q", rsp.Value, msg)
		}
		return nil
	}
	return &system{name: "ours", call: call, close: func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx) //nolint:errcheck
	}}, nil
}

// grpcEcho is the gRPC service: a hand-written ServiceDesc with the default
// protobuf codec, so no generated code is needed.
var grpcEchoDesc = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return &wrapperspb.StringValue{Value: in.Value}, nil
		},
	}},
	Streams: []grpc.StreamDesc{},
}

func startGRPC() (*system, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	gs := grpc.NewServer()
	gs.RegisterService(&grpcEchoDesc, struct{}{})
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		gs.Stop()
		return nil, err
	}
	call := func(ctx context.Context, msg string) error {
		var rsp wrapperspb.StringValue
		if err := conn.Invoke(ctx, "/bench.Echo/Echo", &wrapperspb.StringValue{Value: msg}, &rsp); err != nil {
			return err
		}
		if rsp.Value != msg {
			return fmt.Errorf("grpc: echoed %q, want %q", rsp.Value, msg)
		}
		return nil
	}
	return &system{name: "grpc", call: call, close: func() { conn.Close(); gs.Stop() }}, nil
}

// result aggregates the rounds of one system at one concurrency.
type result struct {
	calls   int64
	elapsed time.Duration
	lat     []time.Duration
}

func (r *result) rate() float64 { return float64(r.calls) / r.elapsed.Seconds() }

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

// load runs conc workers calling for d and adds their figures to r.
func load(ctx context.Context, s *system, conc int, d time.Duration, msg string, r *result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		stop  atomic.Bool
		mu    sync.Mutex
		first error
	)
	lats := make([][]time.Duration, conc)
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A context per worker, as each caller has its own: contexts
			// derived from one shared parent contend on its lock.
			wctx, wcancel := context.WithCancel(ctx)
			defer wcancel()
			l := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				t0 := time.Now()
				if err := s.call(wctx, msg); err != nil {
					mu.Lock()
					if first == nil && ctx.Err() == nil {
						first = err
					}
					mu.Unlock()
					stop.Store(true)
					break
				}
				l = append(l, time.Since(t0))
			}
			lats[w] = l
		}()
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return fmt.Errorf("%s at concurrency %d: %w", s.name, conc, first)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, l := range lats {
		r.calls += int64(len(l))
		r.lat = append(r.lat, l...)
	}
	r.elapsed += elapsed
	return nil
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	maxConc := slices.Max(cfg.Concurrency)
	var systems []*system
	if cfg.Only == "" || cfg.Only == "ours" {
		ours, err := startOurs(maxConc, cfg.Discovery)
		if err != nil {
			return err
		}
		defer ours.close()
		systems = append(systems, ours)
	}
	if cfg.Only == "" || cfg.Only == "grpc" {
		g, err := startGRPC()
		if err != nil {
			return err
		}
		defer g.close()
		systems = append(systems, g)
	}
	if len(systems) == 0 {
		return fmt.Errorf("-only %q: want ours or grpc", cfg.Only)
	}

	how := "calls sent to the server's address"
	if cfg.Discovery {
		how = "calls routed through a memory registry and the selector"
	}
	fmt.Fprintf(w, "unary echo of a %d-byte string (google.protobuf.StringValue, application/protobuf) on loopback; ours: %s\n", len(cfg.Message), how)
	fmt.Fprintf(w, "%s, GOMAXPROCS=%d, %d x %v per case and system\n\n", runtime.Version(), runtime.GOMAXPROCS(0), cfg.Rounds, cfg.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tours calls/s\tgRPC calls/s\tratio\tours p50\tgRPC p50\tours p99\tgRPC p99\tp99 ratio\t")
	for _, conc := range cfg.Concurrency {
		res := make([]*result, len(systems))
		for i, s := range systems {
			res[i] = &result{}
			if err := load(ctx, s, conc, cfg.Warmup, cfg.Message, &result{}); err != nil {
				return err
			}
		}
		for round := range cfg.Rounds {
			for k := range systems {
				i := (k + round) % len(systems) // alternate who goes first
				if err := load(ctx, systems[i], conc, cfg.Duration, cfg.Message, res[i]); err != nil {
					return err
				}
			}
		}
		for _, r := range res {
			slices.Sort(r.lat)
		}
		row := func(r *result) (string, string, string) {
			if r == nil {
				return "-", "-", "-"
			}
			return fmt.Sprintf("%.0f", r.rate()), fmtDur(r.pct(0.50)), fmtDur(r.pct(0.99))
		}
		var ours, grpcR *result
		for i, s := range systems {
			if s.name == "ours" {
				ours = res[i]
			} else {
				grpcR = res[i]
			}
		}
		or, op50, op99 := row(ours)
		gr, gp50, gp99 := row(grpcR)
		ratio, p99ratio := "-", "-"
		if ours != nil && grpcR != nil {
			ratio = fmt.Sprintf("%.2f", ours.rate()/grpcR.rate())
			p99ratio = fmt.Sprintf("%.2f", float64(ours.pct(0.99))/float64(grpcR.pct(0.99)))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", conc, or, gr, ratio, op50, gp50, op99, gp99, p99ratio)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratio = ours/gRPC calls/s (higher is better for ours); p99 ratio = ours/gRPC p99 (lower is better for ours)")
	return nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}
