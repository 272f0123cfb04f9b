package main

// The access side of the bot (package bot/access): the policy (--policy,
// --admins), confirmations (--confirm_timeout) and the audit log
// (--audit_log); SIGHUP reloads the policy and reopens the audit log.
// main.go calls these functions.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot/access"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input"
)

// Flag names of the access guard.
const (
	flagPolicy         = "policy"
	flagAdmins         = "admins"
	flagAuditLog       = "audit_log"
	flagConfirmTimeout = "confirm_timeout"
)

// accessFlags are the guard's flags, new each call:
//
//	--policy           YAML policy file, reloaded on SIGHUP          $MICRO_POLICY
//	--admins           admins, input:id, comma-separated             $MICRO_ADMINS
//	--audit_log        audit file (appended, 0600), or - for stderr  $MICRO_AUDIT_LOG
//	--confirm_timeout  how long a confirmation code is valid (2m)    $MICRO_CONFIRM_TIMEOUT
func accessFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagPolicy, EnvVars: []string{"MICRO_POLICY"},
			Usage: "access policy file (YAML, see docs/access.md); reloaded on SIGHUP. Default: everyone may run every command but register/deregister service, watch, unwatch and publish, which are for admins"},
		&cli.StringSliceFlag{Name: flagAdmins, EnvVars: []string{"MICRO_ADMINS"},
			Usage: "admins, as input:user-id (slack:U0123ABCD, xmpp:alice@example.org, shell:alice), comma-separated; added to the policy file's"},
		&cli.StringFlag{Name: flagAuditLog, EnvVars: []string{"MICRO_AUDIT_LOG"},
			Usage: "file to append the audit log to, one JSON line per command (created with mode 0600), or - for standard error. Default: audit records go to the log at level info"},
		&cli.DurationFlag{Name: flagConfirmTimeout, EnvVars: []string{"MICRO_CONFIRM_TIMEOUT"},
			Usage: "how long a confirmation code stays valid", DefaultText: "the policy's confirm.timeout, or 2m"},
	}
}

// accessConfig reads the guard's flags; --audit_log=- writes to stderr.
func accessConfig(c *cli.Context, stderr io.Writer) (access.Config, error) {
	cfg := access.Config{
		Policy:         c.String(flagPolicy),
		Admins:         c.StringSlice(flagAdmins),
		AuditLog:       c.String(flagAuditLog),
		ConfirmTimeout: c.Duration(flagConfirmTimeout),
		Names:          input.Names{"AuditLog": "--" + flagAuditLog, "ConfirmTimeout": "--" + flagConfirmTimeout},
	}
	if c.IsSet(flagConfirmTimeout) && cfg.ConfirmTimeout <= 0 {
		return access.Config{}, fmt.Errorf("--%s must be positive", flagConfirmTimeout)
	}
	cfg.AuditStderr = stderr
	return cfg, nil
}

// newGuard builds the guard from the command line (and opts), and the command table
// whose help shows each caller what the policy lets them run. A policy file
// that does not load is an error naming its file and line.
func newGuard(c *cli.Context, stderr io.Writer, log *slog.Logger, opts ...access.Option) (*access.Guard, *command.Table, error) {
	cfg, err := accessConfig(c, stderr)
	if err != nil {
		return nil, nil, err
	}
	g, err := access.Open(cfg, log, opts...)
	if err != nil {
		return nil, nil, err
	}
	return g, command.NewTable(command.WithVisibility(g.Visibility())), nil
}

// installCommands puts the built-ins into table, and confirm with the
// guard's checks of the commands of namespace ns.
func installCommands(table *command.Table, g *access.Guard, ns string, reg registry.Registry, cl command.Caller) error {
	if err := command.RegisterBuiltins(table, reg, cl, command.WithOwnTopics(commandsvc.ProgressTopicPrefix)); err != nil {
		return err
	}
	return g.Install(table, ns)
}

// startAccess reloads the policy and reopens the audit log on every SIGHUP
// (a policy that does not load is logged and the one in effect stays). The
// function returned stops that and closes the audit log: call it once the
// bot has stopped.
func startAccess(ctx context.Context, g *access.Guard) func() {
	stop := onHangup(ctx, func() { _ = g.Reload() }) // it logs what went wrong
	return func() {
		stop()
		g.Close()
	}
}

// onHangup calls reload at every SIGHUP until ctx ends or the function
// returned is called (which waits for a reload under way).
func onHangup(ctx context.Context, reload func()) func() {
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
				reload()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
