package main

// The operations side of the bot (package bot/ops): the HTTP listener with
// /healthz, /readyz and /metrics, the metrics fed by the hooks of the
// client, the command watcher and the bot, the logger, and the bound on
// draining at shutdown. main.go calls these functions.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input"
)

// opsFlags are --http_address, --log_format and --shutdown_timeout.
func opsFlags() []cli.Flag { return ops.Flags() }

// opsLogger returns the logger: --log_format (text on a terminal, JSON
// otherwise) at level, with the values of the token and password flags
// kept out of every line.
func opsLogger(c *cli.Context, stderr io.Writer, level slog.Level) (*slog.Logger, error) {
	cfg, err := ops.ConfigFromCLI(c)
	if err != nil {
		return nil, err
	}
	return ops.NewLogger(stderr, cfg.LogFormat, level, ops.Secrets(c)...)
}

// opsKit is the bot's metrics and its operations configuration.
type opsKit struct {
	cfg     ops.Config
	metrics *ops.Metrics
	log     *slog.Logger
}

// newOps builds the metrics, which count the service commands of table;
// their client wrapper goes to the bot's service.
func newOps(c *cli.Context, table *command.Table, log *slog.Logger) (*opsKit, error) {
	cfg, err := ops.ConfigFromCLI(c)
	if err != nil {
		return nil, err
	}
	m := ops.NewMetrics(ops.WithTable(table), ops.WithMetricsLogger(log))
	return &opsKit{cfg: cfg, metrics: m, log: log}, nil
}

// watchHook counts the registry watch events the command watcher sees.
func (k *opsKit) watchHook() commandsvc.Option {
	return commandsvc.WithWatchHook(k.metrics.WatchHook())
}

// botOptions count and time commands (the metrics middleware goes first,
// outermost, to see every line), follow the inputs' connections, and bound
// the draining of running commands at shutdown.
func (k *opsKit) botOptions() []bot.Option {
	return []bot.Option{
		bot.WithMiddleware(k.metrics.Middleware()),
		bot.WithInputHook(k.metrics.InputHook()),
		bot.WithDrainTimeout(k.cfg.ShutdownTimeout),
	}
}

// start starts the HTTP listener if --http_address is set; /readyz turns
// unready when ctx ends (a stop signal). The function returned stops it.
func (k *opsKit) start(ctx context.Context, inputs []input.Input, reg registry.Registry) (func(), error) {
	k.metrics.WatchInputs(inputs...)
	if k.cfg.HTTPAddress == "" {
		return func() {}, nil
	}
	srv := ops.NewServer(ops.WithInputs(inputs...), ops.WithRegistry(reg), ops.WithMetrics(k.metrics), ops.WithLogger(k.log))
	if err := srv.Start(ctx, k.cfg.HTTPAddress); err != nil {
		return nil, fmt.Errorf("--%s: %w", ops.FlagHTTPAddress, err)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			k.log.Warn("stopping the ops HTTP listener", "err", err)
		}
	}, nil
}
