// Command rpcbench compares microbot's unary call with gRPC-go's on
// loopback, in the same run, with the same small protobuf message
// (google.protobuf.StringValue), at several concurrencies, and prints
// calls/s, p50 and p99 latency for both and the ratios ours/gRPC.
//
//	go run ./cmd/rpcbench [-duration 1s] [-rounds 3] [-concurrency 1,64]
//
// Each case runs -rounds times for -duration, alternating ours and gRPC so
// both see the same machine load; the figures aggregate all rounds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

func main() {
	cfg := defaultConfig()
	var conc, cpuProfile, mutexProfile string
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of one round of one case")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds per case, alternating ours and gRPC")
	flag.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "warm-up before each case")
	flag.StringVar(&conc, "concurrency", "1,64", "comma-separated concurrencies")
	flag.StringVar(&cfg.Message, "message", cfg.Message, "the string sent and echoed")
	flag.StringVar(&cfg.Only, "only", "", "run only this system: ours, grpc (for profiling)")
	flag.BoolVar(&cfg.Discovery, "discovery", false, "route our calls through a registry and the selector instead of the server's address")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	flag.StringVar(&mutexProfile, "mutexprofile", "", "write a mutex contention profile to this file")
	flag.Parse()

	cfg.Concurrency = nil
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad -concurrency %q\n", conc)
			os.Exit(2)
		}
		cfg.Concurrency = append(cfg.Concurrency, n)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if mutexProfile != "" {
		runtime.SetMutexProfileFraction(1)
		defer func() {
			f, err := os.Create(mutexProfile)
			if err == nil {
				pprof.Lookup("mutex").WriteTo(f, 0) //nolint:errcheck
				f.Close()
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		stop()
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type config struct {
	Duration    time.Duration
	Warmup      time.Duration
	Rounds      int
	Concurrency []int
	Message     string
	Only        string
	Discovery   bool
}

func defaultConfig() config {
	return config{
		Duration:    time.Second,
		Warmup:      300 * time.Millisecond,
		Rounds:      3,
		Concurrency: []int{1, 64},
		Message:     "hello, microbot",
	}
}
