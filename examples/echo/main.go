// Command echo is the original micro bot's example of a command as a
// service: it registers as go.micro.bot.echo, so the bot's command echo runs
// it, and it answers with every word typed, the command word included ("echo
// hi there" gives "echo hi there"; the bot's built-in echo, which it
// replaces while it runs, gives "hi there").
//
//	go run ./examples/echo --registry_address /tmp/reg
//
// It takes the framework's flags (--registry, --registry_address, ...).
package main

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/microbot/microbot/commandsvc"
)

func main() {
	err := commandsvc.Run(context.Background(), "go.micro.bot.echo", "echo",
		"This is an example bot command as a micro service which echos the message",
		func(ctx context.Context, args []string) (string, error) {
			return strings.Join(args, " "), nil
		})
	if err != nil {
		slog.Error("echo", "err", err)
		os.Exit(1)
	}
}
