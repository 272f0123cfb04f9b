// Command testsvc is a command service for tests that misbehaves on demand.
// Named by --server_name (default go.micro.bot.trial), it answers
//
//	trial ok words...   "trial says: words..."
//	trial fail          the command's error (ExecResponse.error)
//	trial hang          never answers (ignores the caller's deadline)
//	trial sleep 1s      answers "trial slept 1s" after that long
//	trial crash         exits the process in the middle of the call
//	trial panic         panics in the handler
//	trial steps 3 200ms reports "step 1/3" ... "step 3/3" as progress
//	                    (commandsvc.Progress), each followed by 200ms of
//	                    work, then answers "trial did 3 steps"
//	trial await FILE    reports "waiting for FILE" as progress, then
//	                    answers "trial saw FILE" once the file exists
//	trial late 200ms    answers "trial answered", then reports a line
//	                    of progress 200ms later (after its Exec returned)
//
// With TESTSVC_COUNT=N it instead serves N command services in one process,
// named TESTSVC_PREFIX + 0..N-1 (default go.micro.bot.cmd), registered in
// the local registry at MICRO_REGISTRY_ADDRESS: the load for benchmarks.
// They are registered once, with a TTL of an hour; with TESTSVC_REFRESH=d
// (a duration, e.g. 15s as the framework's default --register_interval)
// each registers again every d with a TTL of 2d, at evenly spread moments,
// as N separate processes would.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/framework/server"
	pb "github.com/microbot/microbot/proto/bot"
)

func exec(ctx context.Context, args []string) (string, error) {
	mode := ""
	if len(args) > 1 {
		mode = args[1]
	}
	switch mode {
	case "ok":
		return args[0] + " says: " + strings.Join(args[2:], " "), nil
	case "fail":
		return "", errors.New("failed on purpose")
	case "hang":
		time.Sleep(time.Hour)
		return "", nil
	case "sleep":
		if len(args) != 3 {
			return "", errors.New("sleep how long? e.g. trial sleep 1s")
		}
		d, err := time.ParseDuration(args[2])
		if err != nil || d < 0 {
			return "", fmt.Errorf("sleep %q: want a duration, e.g. 1s", args[2])
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return args[0] + " slept " + args[2], nil
	case "steps":
		return steps(ctx, args)
	case "await":
		return await(ctx, args)
	case "late":
		if len(args) != 3 {
			return "", errors.New("late by how long? e.g. trial late 200ms")
		}
		d, err := time.ParseDuration(args[2])
		if err != nil || d < 0 {
			return "", fmt.Errorf("late %q: want a duration, e.g. 200ms", args[2])
		}
		later := context.WithoutCancel(ctx)
		time.AfterFunc(d, func() {
			if err := commandsvc.Progress(later, "a late line, after the answer"); err != nil {
				slog.Warn("testsvc: late progress", "err", err)
			}
		})
		return args[0] + " answered", nil
	case "crash":
		os.Exit(3)
	case "panic":
		panic("testsvc: panic on purpose")
	}
	return "", fmt.Errorf("unknown mode %q; want ok, fail, hang, sleep, steps, await, late, crash or panic", mode)
}

// steps reports args[2] steps of progress, args[3] apart, and answers.
func steps(ctx context.Context, args []string) (string, error) {
	if len(args) != 4 {
		return "", errors.New("how many steps, how far apart? e.g. trial steps 3 200ms")
	}
	n, err := strconv.Atoi(args[2])
	if err != nil || n < 1 {
		return "", fmt.Errorf("steps %q: want a positive number", args[2])
	}
	d, err := time.ParseDuration(args[3])
	if err != nil || d < 0 {
		return "", fmt.Errorf("steps apart %q: want a duration, e.g. 200ms", args[3])
	}
	for i := 1; i <= n; i++ {
		if err := commandsvc.Progress(ctx, fmt.Sprintf("step %d/%d", i, n)); err != nil {
			return "", err
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return fmt.Sprintf("%s did %d steps", args[0], n), nil
}

// await reports that it waits for the file args[2], and answers once it
// exists: a test sees the progress while the command runs, then lets it
// finish.
func await(ctx context.Context, args []string) (string, error) {
	if len(args) != 3 {
		return "", errors.New("await which file? e.g. trial await /tmp/go")
	}
	if err := commandsvc.Progress(ctx, "waiting for "+args[2]); err != nil {
		return "", err
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(args[2]); err == nil {
			return args[0] + " saw " + args[2], nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func main() {
	if n := os.Getenv("TESTSVC_COUNT"); n != "" {
		if err := many(n); err != nil {
			slog.Error("testsvc", "err", err)
			os.Exit(1)
		}
		return
	}
	err := commandsvc.Run(context.Background(), "go.micro.bot.trial", "trial [ok|fail|hang|sleep|steps|await|late|crash|panic] [words]",
		"misbehaves on demand (tests only)", exec, framework.WithRegisterTTL(10*time.Second), framework.WithRegisterInterval(2*time.Second))
	if err != nil {
		slog.Error("testsvc", "err", err)
		os.Exit(1)
	}
}

// many serves count command services from one process.
func many(count string) error {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return fmt.Errorf("TESTSVC_COUNT=%q: want a positive number", count)
	}
	prefix := os.Getenv("TESTSVC_PREFIX")
	if prefix == "" {
		prefix = "go.micro.bot.cmd"
	}
	ttl, refresh := time.Hour, time.Duration(0)
	if v := os.Getenv("TESTSVC_REFRESH"); v != "" {
		if refresh, err = time.ParseDuration(v); err != nil || refresh <= 0 {
			return fmt.Errorf("TESTSVC_REFRESH=%q: want a positive duration", v)
		}
		ttl = 2 * refresh
	}
	reg, err := local.New(local.WithDir(os.Getenv("MICRO_REGISTRY_ADDRESS")))
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var servers []*server.Server
	for i := range n {
		name := prefix + strconv.Itoa(i)
		word := name[strings.LastIndexByte(name, '.')+1:]
		s, err := server.New(server.WithName(name), server.WithRegistry(reg), server.WithRegisterTTL(ttl))
		if err != nil {
			return err
		}
		if err := pb.RegisterCommandHandler(s, commandsvc.Handler(word+" [args]", "benchmark command "+strconv.Itoa(i), exec)); err != nil {
			return err
		}
		if err := s.Start(ctx); err != nil {
			return err
		}
		servers = append(servers, s)
	}
	fmt.Println("ready") // the benchmark waits for this line
	if refresh > 0 {
		go refreshAll(ctx, servers, refresh)
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	for _, s := range servers {
		s.Stop(sctx)
	}
	return nil
}

// refreshAll registers each server again every interval, one after the
// other at even steps.
func refreshAll(ctx context.Context, servers []*server.Server, interval time.Duration) {
	t := time.NewTicker(max(interval/time.Duration(len(servers)), time.Millisecond))
	defer t.Stop()
	for i := 0; ; i = (i + 1) % len(servers) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := servers[i].Register(rctx); err != nil && ctx.Err() == nil {
			slog.Warn("testsvc: refresh", "err", err)
		}
		cancel()
	}
}
