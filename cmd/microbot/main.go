// Command microbot is a chat-ops bot for microservices: people type in
// Slack, an XMPP room or the console, and the bot answers by looking at the
// service registry and calling services.
//
// This file only wires the parts together: the flags (each with a MICRO_*
// environment variable), the framework service the bot registers as, the
// command table with its built-ins, the watcher that adds command services,
// the inputs, and the bot loop.
//
//	microbot                                   console bot on the local registry
//	microbot --inputs=slack,shell              Slack and the console at once
//	microbot exec "list services"              run one command and exit
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/access"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/shell"
)

// DefaultServerName is the name the bot registers under. It is outside the
// command namespace on purpose: the bot is no command.
const DefaultServerName = "go.micro.srv.bot"

// Flag names of the bot (the framework's and the inputs' are added).
const (
	flagInputs         = "inputs"
	flagNamespace      = "namespace"
	flagCommandTimeout = "command_timeout"
	flagMaxConcurrent  = "max_concurrent"
	flagResync         = "command_resync"
	flagLogLevel       = "log_level"
	flagDiscoveryWait  = "discovery_wait"
)

func main() {
	if err := newApp(os.Stdout, os.Stderr).Run(os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "microbot:", err)
		os.Exit(1)
	}
}

const description = `microbot is a chat-ops bot for microservices. Type commands in Slack, an
XMPP room or this console; the bot answers from the service registry and by
calling services over RPC:

   list services
   get service go.micro.srv.greeter
   query go.micro.srv.greeter Say.Hello {"name": "John"}
   health go.micro.srv.greeter
   help

Any service registered as go.micro.bot.<name> that serves Command.Help and
Command.Exec becomes the command <name> (see examples/echo), without
rebuilding the bot.

With no flags it is a console bot on the local registry (services of this
host). Every flag can also be set by its environment variable (MICRO_...).

Examples:
   microbot                                          # console
   echo "list services" | microbot                   # scripted console
   microbot exec "query go.micro.srv.greeter Say.Hello {\"name\": \"John\"}"
   microbot publish deploys '{"title": "deploy of web v2 started", "severity": "info"}'
   MICRO_SLACK_BOT_TOKEN=... MICRO_SLACK_APP_TOKEN=... microbot --inputs=slack
   microbot --registry=consul --registry_address=127.0.0.1:8500 --inputs=slack,shell`

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:            "microbot",
		Usage:           "a chat-ops bot for microservices (Slack, XMPP, console)",
		UsageText:       "microbot [flags]\nmicrobot [flags] exec COMMAND...\nmicrobot [flags] publish TOPIC JSON",
		Description:     description,
		Flags:           allFlags(),
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Action:          func(c *cli.Context) error { return runBot(c, stderr) },
		Commands: []*cli.Command{{
			Name:            "exec",
			HideHelpCommand: true, // "exec help" runs the bot's help
			Usage:           "run one command, print its reply and exit (status 1 if it failed)",
			ArgsUsage:       `COMMAND...   e.g. exec "list services"`,
			Description: "Runs one command as the console user (--shell_user) after a first discovery of\n" +
				"the command services, prints the reply on standard output (an error reply on\n" +
				"standard error) and exits with status 0, or 1 if the reply is an error.\n\n" +
				"The flags are microbot's (see microbot --help for their MICRO_* variables) and\n" +
				"may come before or after exec: microbot --registry=consul exec \"list services\"\n" +
				"and microbot exec --registry=consul \"list services\" are the same. A flag given\n" +
				"both before and after exec takes its value from after exec. The flags only the\n" +
				"running bot uses (--inputs, --http_address, --shell_history and the Slack, XMPP\n" +
				"and HipChat ones) are accepted and have no effect.",
			Flags:  execFlags(),
			Before: inheritFlags,
			Action: func(c *cli.Context) error { return runExec(c, stdout, stderr) },
		}, publishCommand(stdout, stderr)},
	}
}

// allFlags returns the framework's flags, the bot's, and every input's, new
// each call.
func allFlags() []cli.Flag {
	flags := framework.Flags()
	flags = append(flags,
		&cli.StringFlag{Name: flagInputs, EnvVars: []string{"MICRO_INPUTS", "MICRO_BOT_INPUTS"}, Value: "shell",
			Usage: "comma-separated inputs to listen on: " + strings.Join(inputTable.Names(), ", ")},
		&cli.StringFlag{Name: flagNamespace, EnvVars: []string{"MICRO_NAMESPACE", "MICRO_BOT_NAMESPACE"}, Value: commandsvc.DefaultNamespace,
			Usage: "registry namespace of command services: <namespace>.<name> is the command <name>"},
		&cli.DurationFlag{Name: flagCommandTimeout, EnvVars: []string{"MICRO_COMMAND_TIMEOUT"}, Value: bot.DefaultCommandTimeout,
			Usage: "how long one command may run"},
		&cli.IntFlag{Name: flagMaxConcurrent, EnvVars: []string{"MICRO_MAX_CONCURRENT"}, Value: bot.DefaultMaxConcurrent,
			Usage: "how many messages of one input are handled at once"},
		&cli.DurationFlag{Name: flagResync, EnvVars: []string{"MICRO_COMMAND_RESYNC"}, Value: watch.DefaultResync,
			Usage: "how often the command namespace is listed again in full (the registry watch does the rest)"},
		&cli.StringFlag{Name: flagLogLevel, EnvVars: []string{"MICRO_LOG_LEVEL"},
			Usage: "debug, info, warn or error (default: info; warn when the console is the only input)"},
		&cli.DurationFlag{Name: flagDiscoveryWait, EnvVars: []string{"MICRO_DISCOVERY_WAIT"}, Value: 5 * time.Second,
			Usage: "how long to wait at start for the first discovery of command services before reading messages"},
	)
	flags = append(flags, opsFlags()...)
	flags = append(flags, haFlags()...)
	flags = append(flags, accessFlags()...)
	flags = append(flags, notifyFlags()...)
	flags = append(flags, inputFlags()...)
	// The server name defaults to the bot's own.
	for _, f := range flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == framework.FlagServerName {
			sf.Value = DefaultServerName
		}
	}
	return flags
}

// execFlags are allFlags without their environment variables: exec takes
// those, with the flags given before exec, from microbot's own flags (see
// inheritFlags), so that a flag on the command line beats its variable
// wherever it stands.
func execFlags() []cli.Flag {
	flags := allFlags()
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = nil
		case *cli.StringSliceFlag:
			f.EnvVars = nil
		case *cli.BoolFlag:
			f.EnvVars = nil
		case *cli.IntFlag:
			f.EnvVars = nil
		case *cli.DurationFlag:
			f.EnvVars = nil
		case *cli.GenericFlag:
			f.EnvVars = nil
		default:
			panic(fmt.Sprintf("execFlags: flag --%s of type %T: add its type here and in flagValue", f.Names()[0], f))
		}
	}
	return flags
}

// inheritFlags is exec's Before: exec's context takes the value of every
// flag its own command line did not set from microbot's context, where it
// was set on the command line or by its environment variable. So flags
// work before or after exec alike, one given after exec wins, and the
// environment comes last.
//
// urfave/cli looks a flag up in the nearest context that defines it, and
// exec defines them all (to accept them after exec): without this, a flag
// given before exec was never read.
func inheritFlags(c *cli.Context) error {
	lineage := c.Lineage()
	if len(lineage) < 2 {
		return nil
	}
	parent := lineage[1]
	// exec's flags have no environment variables: its local names are
	// those set on its command line. microbot's are those set on its
	// command line or by their variables.
	own, inherited := c.LocalFlagNames(), parent.LocalFlagNames()
	for _, f := range c.Command.Flags {
		names := f.Names()
		if slices.ContainsFunc(names, func(n string) bool { return slices.Contains(own, n) }) ||
			!slices.ContainsFunc(names, func(n string) bool { return slices.Contains(inherited, n) }) {
			continue
		}
		v, err := flagValue(parent, f)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := c.Set(n, v); err != nil {
				return fmt.Errorf("--%s: %w", n, err)
			}
		}
	}
	return nil
}

// flagValue is the value of flag f in c, written so that setting it again
// gives the same value (a list replaces, it does not add).
func flagValue(c *cli.Context, f cli.Flag) (string, error) {
	name := f.Names()[0]
	switch f.(type) {
	case *cli.StringFlag:
		return c.String(name), nil
	case *cli.StringSliceFlag:
		return cli.NewStringSlice(c.StringSlice(name)...).Serialize(), nil
	case *cli.BoolFlag:
		return strconv.FormatBool(c.Bool(name)), nil
	case *cli.IntFlag:
		return strconv.Itoa(c.Int(name)), nil
	case *cli.DurationFlag:
		return c.Duration(name).String(), nil
	case *cli.GenericFlag:
		if g := c.Generic(name); g != nil {
			return g.(cli.Generic).String(), nil
		}
		return "", nil
	}
	return "", fmt.Errorf("--%s: flags of type %T cannot be given before exec", name, f)
}

// parts is everything the bot and exec share.
type parts struct {
	svc     *framework.Service
	table   *command.Table
	watcher *watch.Watcher
	log     *slog.Logger
	ops     *opsKit
	guard   *access.Guard
	ha      *haKit // nil without --ha
}

// setup builds the parts; with ha (the bot, not exec), --ha is read too
// and the progress of command services followed.
func setup(c *cli.Context, stderr io.Writer, consoleOnly, ha bool) (*parts, error) {
	log, err := newLogger(c, stderr, consoleOnly)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(log)
	ns := strings.TrimSuffix(c.String(flagNamespace), ".")
	if ns == "" {
		return nil, fmt.Errorf("--%s must not be empty", flagNamespace)
	}
	if c.Int(flagMaxConcurrent) < 1 {
		return nil, fmt.Errorf("--%s must be at least 1", flagMaxConcurrent)
	}
	for _, f := range []string{flagCommandTimeout, flagResync} {
		if c.Duration(f) <= 0 {
			return nil, fmt.Errorf("--%s must be positive", f)
		}
	}
	var kit *haKit
	if ha {
		if kit, err = newHA(c, log); err != nil {
			return nil, err
		}
	}
	guard, table, err := newGuard(c, stderr, log, kit.guardOptions()...)
	if err != nil {
		return nil, err
	}
	p, err := assemble(c, log, ns, guard, table, kit, ha)
	if err != nil {
		guard.Close()
		return nil, err
	}
	return p, nil
}

// assemble builds the bot's service, whose client the metrics watch, and
// the command watcher, and fills the command table. The bot (not exec,
// which shows no progress) follows the progress of command services.
func assemble(c *cli.Context, log *slog.Logger, ns string, guard *access.Guard, table *command.Table, ha *haKit, isBot bool) (*parts, error) {
	kit, err := newOps(c, table, log)
	if err != nil {
		return nil, err
	}
	flagOpts, err := framework.FlagOptions(c)
	if err != nil {
		return nil, err
	}
	svc, err := framework.NewService(append(append([]framework.Option{
		framework.WithName(DefaultServerName),
		framework.WithCallWrappers(kit.metrics.WrapCall()), // every RPC call a command or the watcher makes
	}, flagOpts...), ha.serviceOptions()...)...)
	if err != nil {
		return nil, err
	}
	if name := svc.Name(); name == ns || strings.HasPrefix(name, ns+".") {
		return nil, fmt.Errorf("--%s %q is inside the command namespace %q: the bot would be a command; pick another name", framework.FlagServerName, name, ns)
	}
	reg, cl := svc.Registry(), svc.Client()
	if err := installCommands(table, guard, ns, reg, cl); err != nil {
		return nil, err
	}
	// Help is asked once per service: no kept-alive connection to each.
	helpCaller, err := client.New(client.WithPoolSize(0))
	if err != nil {
		return nil, err
	}
	wopts := []watch.Option{kit.watchHook(),
		watch.WithNamespace(ns),
		watch.WithHelpCaller(helpCaller),
		watch.WithCommandTimeout(c.Duration(flagCommandTimeout)),
		watch.WithResync(c.Duration(flagResync)),
		watch.WithLogger(log),
	}
	if isBot {
		wopts = append(wopts, watch.WithBroker(svc.Broker()), kit.progressHook()) // the progress of command services
	}
	w := watch.New(reg, cl, table, wopts...)
	return &parts{svc: svc, table: table, watcher: w, log: log, ops: kit, guard: guard, ha: ha}, nil
}

func newLogger(c *cli.Context, stderr io.Writer, consoleOnly bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	if consoleOnly {
		level = slog.LevelWarn
	}
	if s := c.String(flagLogLevel); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			return nil, fmt.Errorf("--%s %q: want debug, info, warn or error", flagLogLevel, s)
		}
	}
	return opsLogger(c, stderr, level)
}

func botOptions(c *cli.Context, p *parts) []bot.Option {
	return append(p.ops.botOptions(),
		bot.WithCommandTimeout(c.Duration(flagCommandTimeout)),
		bot.WithMaxConcurrent(c.Int(flagMaxConcurrent)),
		bot.WithLogger(p.log),
		bot.WithMiddleware(p.guard.Middleware()),
	)
}

// discovered waits, up to --discovery_wait, for the first discovery of the
// command services, so the first lines of a script find them; false if ctx
// ended first.
func (p *parts) discovered(ctx context.Context, c *cli.Context) bool {
	t := time.NewTimer(c.Duration(flagDiscoveryWait))
	defer t.Stop()
	select {
	case <-p.watcher.Ready():
	case <-t.C:
		p.log.Warn("command services not all discovered in time; going on", "waited", c.Duration(flagDiscoveryWait))
	case <-ctx.Done():
		return false
	}
	return true
}

// runBot runs the bot on its inputs until they end or a signal comes.
func runBot(c *cli.Context, stderr io.Writer) error {
	if c.Args().Present() {
		return fmt.Errorf("unexpected argument %q (to run one command: microbot exec %q)", c.Args().First(), strings.Join(c.Args().Slice(), " "))
	}
	var names []string
	for _, n := range strings.Split(c.String(flagInputs), ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	logOut := newLogOutput(stderr)
	p, err := setup(c, logOut, slices.Equal(names, []string{"shell"}), true)
	if err != nil {
		return err
	}
	var inputs []input.Input
	var consoles []*shell.Shell
	for _, n := range names {
		newInput, err := inputTable.Get(n)
		if err != nil {
			return fmt.Errorf("--%s: %w", flagInputs, err)
		}
		in, err := newInput(c, p)
		if err != nil {
			return fmt.Errorf("input %s: %w", n, err)
		}
		if sh, ok := in.(*shell.Shell); ok {
			consoles = append(consoles, sh)
			logOut.use(sh.LogWriter(stderr)) // log lines above the prompt, not in it
		}
		inputs = append(inputs, p.ha.wrap(in, p.ops))
	}
	// The terminal goes back as it was as soon as the bot stops, whatever
	// the service still does (the bot closes connections in the
	// background).
	closeConsoles := func() {
		for _, sh := range consoles {
			sh.Close()
		}
	}
	defer closeConsoles()
	ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	stopOps, err := p.ops.start(ctx, inputs, p.svc.Registry(), p.svc.Client(), p.ha != nil)
	if err != nil {
		return err
	}
	defer stopOps()
	defer startAccess(ctx, p.guard)()
	if err := p.svc.Start(ctx); err != nil {
		return fmt.Errorf("starting the bot's service: %w", err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := p.svc.Stop(sctx); err != nil {
			p.log.Warn("stopping the bot's service", "err", err)
		}
	}()
	stopNotify, err := startNotify(ctx, c, p, inputs)
	if err != nil {
		return err
	}
	defer stopNotify() // before the service stops: its broker is drained then
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go p.watcher.Run(wctx)
	if !p.discovered(ctx, c) {
		return nil
	}
	p.log.Info("microbot started", "service", p.svc.Name(), "inputs", names, "registry", p.svc.Registry().String(), "ha", p.ha != nil)
	b := bot.New(p.table, append(botOptions(c, p), bot.WithInputs(inputs...))...)
	err = b.Run(ctx)
	cancel() // a second signal kills the process at once
	closeConsoles()
	p.ha.close() // hand the exclusive inputs over before deregistering
	return err
}

// runExec runs one command and exits: status 1 if its reply is an error.
func runExec(c *cli.Context, stdout, stderr io.Writer) error {
	text := strings.Join(c.Args().Slice(), " ")
	if strings.TrimSpace(text) == "" {
		return cli.Exit(`exec: which command? e.g. microbot exec "list services"`, 2)
	}
	p, err := setup(c, stderr, true, false)
	if err != nil {
		return err
	}
	defer p.guard.Close()
	if err := installWatchCommands(p); err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = p.svc.Stop(sctx) // the broker, if publish used it
	}()
	ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go p.watcher.Run(wctx)
	if !p.discovered(ctx, c) {
		return cli.Exit("interrupted", 130)
	}
	user := c.String(flagShellUser)
	name := c.String(flagShellUserName)
	if name == "" {
		name = user
	}
	b := bot.New(p.table, botOptions(c, p)...)
	rep := b.Handle(ctx, &input.Event{
		Input: "exec", UserID: user, UserName: name, Room: shell.Room, // the console's room, as documented
		Direct: true, Addressed: true, Text: text,
	})
	if rep == nil {
		return nil
	}
	if rep.Error {
		fmt.Fprintln(stderr, strings.TrimRight(rep.Text, "\n"))
		return cli.Exit("", 1)
	}
	fmt.Fprintln(stdout, strings.TrimRight(rep.Text, "\n"))
	return nil
}
