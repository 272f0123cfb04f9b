package main

// Events into chat (package bot/notify): the rooms' watches of broker
// topics, the routes file (--notify_routes, reloaded on SIGHUP), the
// watch, unwatch, watching and publish commands, and `microbot publish`.
// main.go calls these functions.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/notify"
	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input"
)

// Flag names of the notifier, each with its MICRO_* environment variable.
const (
	flagNotifyRoutes     = "notify_routes"      // MICRO_NOTIFY_ROUTES
	flagNotifyInterval   = "notify_interval"    // MICRO_NOTIFY_INTERVAL
	flagNotifyQueueGroup = "notify_queue_group" // MICRO_NOTIFY_QUEUE_GROUP
)

// notifyFlags are the notifier's flags, new each call.
func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagNotifyRoutes, EnvVars: []string{envOf(flagNotifyRoutes)},
			Usage: "routes file (YAML: routes: [{topic: alerts, rooms: [slack:C0123ABCD]}]): topics whose events go to rooms whatever they watch; reloaded on SIGHUP"},
		&cli.DurationFlag{Name: flagNotifyInterval, EnvVars: []string{envOf(flagNotifyInterval)}, Value: notify.DefaultInterval,
			Usage: "least time between two posts of events in one room; a storm is folded into \"+N more on TOPIC\""},
		&cli.StringFlag{Name: flagNotifyQueueGroup, EnvVars: []string{envOf(flagNotifyQueueGroup)},
			Usage: "queue group of the bot's subscriptions: bots sharing it (and a registry) share each topic's events, each posted once per room; empty: every bot posts every event"},
	}
}

// watchStore is the store of the watches: the registry's KV store, or nil
// when the registry keeps none.
func watchStore(p *parts) *notify.Store {
	kv, ok := registry.KVOf(p.svc.Registry())
	if !ok {
		return nil
	}
	return notify.NewStore(kv, p.log)
}

// posters returns the inputs of ins that can post, by the name their
// events give. An input one instance at a time serves (--ha,
// bot.Exclusive) posts through the input it wraps, and tells the notifier
// whether this instance serves it now (notify.Standby): while it stands
// by, its rooms' events are kept for a takeover (notify.WithClaimer).
func posters(ins []input.Input) map[string]input.Poster {
	out := map[string]input.Poster{}
	for _, in := range ins {
		if ex, ok := in.(*bot.Exclusive); ok {
			if p, ok := ex.Input().(input.Poster); ok {
				out[notify.InputName(in.String())] = exclusivePoster{Poster: p, ex: ex}
			}
			continue
		}
		if p, ok := in.(input.Poster); ok {
			out[notify.InputName(in.String())] = p
		}
	}
	return out
}

// exclusivePoster posts through an input one instance at a time serves.
type exclusivePoster struct {
	input.Poster
	ex *bot.Exclusive
}

// Active reports whether this instance serves the input and is connected.
func (e exclusivePoster) Active() bool { return e.ex.Connected() }

// startNotify builds the notifier on the bot's broker and the inputs that
// can post, adds the watch commands to the table, and runs it; SIGHUP
// reloads the routes file. The function returned stops it and waits for
// it: call it before the service stops (the broker is drained then).
func startNotify(ctx context.Context, c *cli.Context, p *parts, ins []input.Input) (func(), error) {
	store := watchStore(p)
	if store == nil {
		p.log.Warn("the registry keeps no KV store: no watch commands, no events in chat", "registry", p.svc.Registry().String())
		return func() {}, nil
	}
	if c.Duration(flagNotifyInterval) < 0 {
		return nil, fmt.Errorf("--%s must not be negative", flagNotifyInterval)
	}
	if p.ha != nil && c.String(flagNotifyQueueGroup) != "" {
		return nil, fmt.Errorf("--%s with --%s: under --%s every instance receives every event and the instances claim each post (docs/ha.md); drop --%s",
			flagNotifyQueueGroup, flagHA, flagHA, flagNotifyQueueGroup)
	}
	opts := []notify.Option{
		notify.WithLogger(p.log),
		notify.WithInterval(c.Duration(flagNotifyInterval)),
		notify.WithQueueGroup(c.String(flagNotifyQueueGroup)),
		notify.WithHook(p.ops.metrics.NotifyHook()),
	}
	haOpts, err := p.ha.notifyOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, haOpts...)
	if f := c.String(flagNotifyRoutes); f != "" {
		opts = append(opts, notify.WithRoutesFile(f))
	}
	n, err := notify.New(p.svc.Broker(), store, posters(ins), opts...)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagNotifyRoutes, err)
	}
	if err := p.table.Register(notify.Commands(notify.CommandsConfig{
		Store: store, Notifier: n, Publisher: p.svc.Client(), Inputs: n.Inputs(), Logger: p.log,
	})...); err != nil {
		return nil, err
	}
	p.ops.metrics.WatchNotifier(n)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			p.log.Error("the notifier stopped", "err", err)
		}
	}()
	stopHangup := onHangup(ctx, func() { _ = n.Reload() }) // it logs what went wrong
	return func() {
		stopHangup()
		cancel()
		<-done
	}, nil
}

// installWatchCommands adds the watch commands to the table of microbot
// exec, which runs no notifier: a watch it adds is stored for the bots
// that run one, and is in effect there at once.
func installWatchCommands(p *parts) error {
	store := watchStore(p)
	if store == nil {
		return nil
	}
	return p.table.Register(notify.Commands(notify.CommandsConfig{
		Store: store, Publisher: p.svc.Client(), Inputs: []string{"shell"}, Logger: p.log,
	})...)
}

// publishCommand is `microbot publish TOPIC JSON`.
func publishCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:            "publish",
		HideHelpCommand: true,
		Usage:           "publish a JSON message on a broker topic (a notification for the rooms that watch it) and exit",
		ArgsUsage:       `TOPIC JSON   e.g. publish deploys '{"title": "deploy of web v2 started", "severity": "info", "thread_key": "web-v2"}'`,
		Description: "Publishes JSON on TOPIC through the broker (--broker, --broker_address) and exits with\n" +
			"status 0 once the broker has it, 1 if it could not be published, 2 if the topic or the\n" +
			"JSON is not valid (nothing is published then). A JSON object whose fields are all\n" +
			"those of go.micro.bot.Notification (title, text, severity, fields, link, thread_key,\n" +
			"source, time) and that has a title or a text is published as a notification; any\n" +
			"other object as it is. The flags are microbot's, before or after publish.",
		Flags:  execFlags(),
		Before: inheritFlags,
		Action: func(c *cli.Context) error { return runPublish(c, stdout, stderr) },
	}
}

// runPublish publishes one message and exits.
func runPublish(c *cli.Context, stdout, stderr io.Writer) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return cli.Exit(`publish: want a topic and JSON, e.g. microbot publish deploys '{"title": "deploy started"}'`, 2)
	}
	log, err := newLogger(c, stderr, true)
	if err != nil {
		return err
	}
	flagOpts, err := framework.FlagOptions(c)
	if err != nil {
		return err
	}
	svc, err := framework.NewService(append([]framework.Option{framework.WithName(DefaultServerName)}, flagOpts...)...)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := svc.Stop(sctx); err != nil {
			log.Debug("stopping", "err", err)
		}
	}()
	kind, n, err := notify.Publish(ctx, svc.Client(), args[0], strings.Join(args[1:], " "))
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "published %s of %d bytes on %s\n", kind, n, args[0])
		return nil
	case errors.Is(err, notify.ErrNotPublished):
		return cli.Exit("publish: "+err.Error(), 2)
	}
	return cli.Exit("publish: "+err.Error(), 1)
}
