package main

// The access side of the bot (package bot/access): the policy (--policy,
// --admins), confirmations (--confirm_timeout) and the audit log
// (--audit_log); SIGHUP reloads the policy and reopens the audit log.
// main.go calls these functions.

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot/access"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/registry"
)

// accessFlags are --policy, --admins, --audit_log and --confirm_timeout.
func accessFlags() []cli.Flag { return access.Flags() }

// newGuard builds the guard from the command line, and the command table
// whose help shows each caller what the policy lets them run. A policy file
// that does not load is an error naming its file and line.
func newGuard(c *cli.Context, log *slog.Logger) (*access.Guard, *command.Table, error) {
	g, err := access.FromCLI(c, log)
	if err != nil {
		return nil, nil, err
	}
	return g, command.NewTable(command.WithVisibility(g.Visibility())), nil
}

// installCommands puts the built-ins into table, and confirm with the
// guard's checks of the commands of namespace ns.
func installCommands(table *command.Table, g *access.Guard, ns string, reg registry.Registry, cl command.Caller) error {
	if err := command.RegisterBuiltins(table, reg, cl); err != nil {
		return err
	}
	return g.Install(table, ns)
}

// startAccess reloads the policy and reopens the audit log on every SIGHUP
// (a policy that does not load is logged and the one in effect stays). The
// function returned stops that and closes the audit log: call it once the
// bot has stopped.
func startAccess(ctx context.Context, g *access.Guard) func() {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = g.Reload() // it logs what went wrong
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
		g.Close()
	}
}
