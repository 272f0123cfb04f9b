// Command sleepsvc is a command service for tests of graceful shutdown:
// registered as go.micro.bot.sleep (or --server_name), it answers
//
//	sleep 2s    waits two seconds, then replies "slept 2s"
//
// and prints "EXEC sleep 2s" on standard output when a call starts, so a
// test knows the command is running.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework"
)

func sleep(ctx context.Context, args []string) (string, error) {
	fmt.Println("EXEC " + strings.Join(args, " "))
	if len(args) < 2 {
		return "", fmt.Errorf("how long? e.g. sleep 2s")
	}
	d, err := time.ParseDuration(args[1])
	if err != nil || d < 0 || d > time.Minute {
		return "", fmt.Errorf("%q: want a duration up to 1m, e.g. 2s", args[1])
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return "slept " + args[1], nil
	case <-ctx.Done():
		return "", fmt.Errorf("interrupted after less than %s: %w", d, ctx.Err())
	}
}

func main() {
	err := commandsvc.Run(context.Background(), "go.micro.bot.sleep", "sleep [duration]", "sleeps, then answers (tests only)", sleep,
		framework.WithRegisterTTL(10*time.Second), framework.WithRegisterInterval(2*time.Second))
	if err != nil {
		slog.Error("sleepsvc", "err", err)
		os.Exit(1)
	}
}
