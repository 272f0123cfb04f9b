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
	"net"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input"
)

// Flag names of the operations side, each with its MICRO_* environment
// variable.
const (
	flagHTTPAddress       = "http_address"       // MICRO_HTTP_ADDRESS
	flagLogFormat         = "log_format"         // MICRO_LOG_FORMAT
	flagShutdownTimeout   = "shutdown_timeout"   // MICRO_SHUTDOWN_TIMEOUT
	flagAlertmanagerToken = "alertmanager_token" // MICRO_ALERTMANAGER_TOKEN
	flagAlertmanagerTopic = "alertmanager_topic" // MICRO_ALERTMANAGER_TOPIC
)

// opsFlags are --http_address, --log_format, --shutdown_timeout and the
// Alertmanager webhook's, new each call.
func opsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagHTTPAddress, EnvVars: []string{"MICRO_HTTP_ADDRESS"},
			Usage: "listen address of /healthz, /readyz and /metrics: 127.0.0.1:8080 for this host only, :8080 in a container (off when empty, the default)"},
		&cli.StringFlag{Name: flagLogFormat, EnvVars: []string{"MICRO_LOG_FORMAT"}, Value: ops.FormatAuto,
			Usage: "log format: auto (text on a terminal, JSON otherwise), text or json"},
		&cli.DurationFlag{Name: flagShutdownTimeout, EnvVars: []string{"MICRO_SHUTDOWN_TIMEOUT"}, Value: ops.DefaultShutdownTimeout,
			Usage: "on SIGTERM or SIGINT, how long running commands may take to finish and reply before the bot exits"},
		&cli.StringFlag{Name: flagAlertmanagerToken, EnvVars: []string{"MICRO_ALERTMANAGER_TOKEN"},
			Usage: "bearer token Prometheus Alertmanager's webhook must send to " + ops.PathAlertmanager + " on --http_address; the endpoint is off without one (prefer the environment variable: flags show in ps)"},
		&cli.StringFlag{Name: flagAlertmanagerTopic, EnvVars: []string{"MICRO_ALERTMANAGER_TOPIC"}, Value: ops.DefaultAlertTopic,
			Usage: "broker topic the alerts from Alertmanager are published on, as notifications (rooms watch it)"},
	}
}

// opsConfig is what the operations flags say.
type opsConfig struct {
	// HTTPAddress is where the ops listener listens; empty: nowhere.
	HTTPAddress string
	// LogFormat is ops.FormatAuto, FormatText or FormatJSON.
	LogFormat string
	// ShutdownTimeout bounds the draining of running commands.
	ShutdownTimeout time.Duration
	// AlertmanagerToken turns the Alertmanager webhook on; AlertmanagerTopic
	// is where its alerts go.
	AlertmanagerToken, AlertmanagerTopic string
}

// opsConfigFrom reads and checks the flags of opsFlags.
func opsConfigFrom(c *cli.Context) (opsConfig, error) {
	cfg := opsConfig{
		HTTPAddress:     c.String(flagHTTPAddress),
		LogFormat:       c.String(flagLogFormat),
		ShutdownTimeout: c.Duration(flagShutdownTimeout),

		AlertmanagerToken: c.String(flagAlertmanagerToken),
		AlertmanagerTopic: c.String(flagAlertmanagerTopic),
	}
	if cfg.LogFormat == "" {
		cfg.LogFormat = ops.FormatAuto
	}
	switch cfg.LogFormat {
	case ops.FormatAuto, ops.FormatText, ops.FormatJSON:
	default:
		return opsConfig{}, fmt.Errorf("--%s %q: want auto, text or json", flagLogFormat, cfg.LogFormat)
	}
	if cfg.HTTPAddress != "" {
		if _, _, err := net.SplitHostPort(cfg.HTTPAddress); err != nil {
			return opsConfig{}, fmt.Errorf("--%s %q: want host:port, e.g. 127.0.0.1:8080 or :8080", flagHTTPAddress, cfg.HTTPAddress)
		}
	}
	if cfg.AlertmanagerToken != "" && cfg.HTTPAddress == "" {
		return opsConfig{}, fmt.Errorf("--%s needs --%s: the webhook is served on the ops listener", flagAlertmanagerToken, flagHTTPAddress)
	}
	if err := broker.ValidateTopic(cfg.AlertmanagerTopic); err != nil {
		return opsConfig{}, fmt.Errorf("--%s: %w", flagAlertmanagerTopic, err)
	}
	if cfg.ShutdownTimeout <= 0 {
		return opsConfig{}, fmt.Errorf("--%s must be positive (was %s)", flagShutdownTimeout, cfg.ShutdownTimeout)
	}
	return cfg, nil
}

// secrets returns the values of the flags of c (the command's and its
// parents', from the command line or the environment) whose names are
// secret (see ops.SecretKey): what the logs must never show.
func secrets(c *cli.Context) []string {
	var out []string
	for _, ctx := range c.Lineage() {
		var flags []cli.Flag
		if ctx.Command != nil {
			flags = append(flags, ctx.Command.Flags...)
		}
		if ctx.App != nil {
			flags = append(flags, ctx.App.Flags...)
		}
		for _, f := range flags {
			for _, name := range f.Names() {
				if !ops.SecretKey(name) {
					continue
				}
				vals := []string{c.String(name)}
				if _, ok := f.(*cli.StringSliceFlag); ok {
					vals = c.StringSlice(name)
				}
				for _, v := range vals {
					if v != "" && !slices.Contains(out, v) {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

// opsLogger returns the logger: --log_format (text on a terminal, JSON
// otherwise) at level, with the values of the token and password flags
// kept out of every line.
func opsLogger(c *cli.Context, stderr io.Writer, level slog.Level) (*slog.Logger, error) {
	cfg, err := opsConfigFrom(c)
	if err != nil {
		return nil, err
	}
	return ops.NewLogger(stderr, cfg.LogFormat, level, secrets(c)...)
}

// opsKit is the bot's metrics and its operations configuration.
type opsKit struct {
	cfg     opsConfig
	metrics *ops.Metrics
	log     *slog.Logger
}

// newOps builds the metrics, which count the service commands of table;
// their client wrapper goes to the bot's service.
func newOps(c *cli.Context, table *command.Table, log *slog.Logger) (*opsKit, error) {
	cfg, err := opsConfigFrom(c)
	if err != nil {
		return nil, err
	}
	m := ops.NewMetrics(ops.WithTable(table), ops.WithMetricsLogger(log))
	return &opsKit{cfg: cfg, metrics: m, log: log}, nil
}

// watchHook counts the registry watch events the command watcher sees.
func (k *opsKit) watchHook() watch.Option {
	return watch.WithWatchHook(k.metrics.WatchHook())
}

// progressHook counts the progress lines of command services.
func (k *opsKit) progressHook() watch.Option {
	return watch.WithProgressHook(k.metrics.ProgressHook())
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

// start starts the HTTP listener if --http_address is set, with the
// Alertmanager webhook publishing through pub if --alertmanager_token is;
// /readyz turns unready when ctx ends (a stop signal), and says which
// inputs this instance is active for with ha. The function returned stops
// it.
func (k *opsKit) start(ctx context.Context, inputs []input.Input, reg registry.Registry, pub ops.Publisher, ha bool) (func(), error) {
	k.metrics.WatchInputs(inputs...)
	if k.cfg.HTTPAddress == "" {
		return func() {}, nil
	}
	opts := []ops.ServerOption{ops.WithInputs(inputs...), ops.WithRegistry(reg), ops.WithMetrics(k.metrics), ops.WithLogger(k.log)}
	if k.cfg.AlertmanagerToken != "" {
		hook, err := ops.NewAlertmanagerHook(k.cfg.AlertmanagerToken, pub, ops.WithAlertTopic(k.cfg.AlertmanagerTopic),
			ops.WithAlertLogger(k.log), ops.WithAlertMetrics(k.metrics.Registry()))
		if err != nil {
			return nil, err
		}
		opts = append(opts, ops.WithAlertmanager(hook))
	}
	if ha {
		opts = append(opts, ops.WithHA())
	}
	srv := ops.NewServer(opts...)
	if err := srv.Start(ctx, k.cfg.HTTPAddress); err != nil {
		return nil, fmt.Errorf("--%s: %w", flagHTTPAddress, err)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			k.log.Warn("stopping the ops HTTP listener", "err", err)
		}
	}, nil
}
