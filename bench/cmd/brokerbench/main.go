// Command brokerbench measures publish -> delivered throughput and latency
// of each of microbot's brokers, side by side in one run with plain nats.go
// publishing to plain nats.go on the same nats-server (the anchor), and
// prints msgs/s, the ratio to the anchor, p50 and p99 latency.
//
//	go run ./cmd/brokerbench [-messages 100000] [-size 128] [-rounds 3] [-systems nats.go,nats,...]
//
// It starts its own nats-server and mosquitto on free loopback ports (from
// PATH or /usr/sbin, or -nats-server and -mosquitto). Each system is one
// publisher and one subscriber with connections of their own. A throughput
// round publishes -messages as fast as a window of -window messages in
// flight allows (so no server's buffers overflow) and divides what was
// delivered by the time from the first publish to the last delivery; a
// latency round publishes -latency messages one at a time, each timed from
// Publish to the handler. The systems alternate round by round, so all see
// the same machine load.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
)

func main() {
	cfg := defaultConfig()
	systems, cpuProfile := strings.Join(cfg.Systems, ","), ""
	flag.IntVar(&cfg.Messages, "messages", cfg.Messages, "messages of one throughput round")
	flag.IntVar(&cfg.Size, "size", cfg.Size, "body size in bytes (at least 16)")
	flag.IntVar(&cfg.Window, "window", cfg.Window, "messages in flight at most in a throughput round")
	flag.IntVar(&cfg.Latency, "latency", cfg.Latency, "messages of one latency round (one in flight)")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds per system, the systems alternating")
	flag.StringVar(&systems, "systems", systems, "comma-separated systems: nats.go (the anchor), nats, nats.go+headers (the anchor of the +headers rows), nats+headers, nats-gomicro+headers (go-micro's format, the nats broker's default), nats-gomicro-in+headers (go-micro's format from plain nats.go into the nats broker), mqtt, mqtt-qos0, http, memory")
	flag.StringVar(&cfg.NATSBin, "nats-server", "", "nats-server binary (default: PATH, /usr/sbin)")
	flag.StringVar(&cfg.MQTTBin, "mosquitto", "", "mosquitto binary (default: PATH, /usr/sbin)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	cfg.Systems = strings.Split(systems, ",")
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "brokerbench:", err)
		stop()
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
