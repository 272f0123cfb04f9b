package ops

import (
	"fmt"
	"net"
	"time"

	"github.com/urfave/cli/v2"
)

// Flag names, each with its MICRO_* environment variable.
const (
	FlagHTTPAddress     = "http_address"     // MICRO_HTTP_ADDRESS
	FlagLogFormat       = "log_format"       // MICRO_LOG_FORMAT
	FlagShutdownTimeout = "shutdown_timeout" // MICRO_SHUTDOWN_TIMEOUT
)

// DefaultShutdownTimeout bounds how long the running commands may take to
// finish and reply once a stop signal comes. It fits, with the
// deregistration, in the 30 s Kubernetes and systemd give by default.
const DefaultShutdownTimeout = 20 * time.Second

// Flags returns the operations flags (new ones each call).
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: FlagHTTPAddress, EnvVars: []string{"MICRO_HTTP_ADDRESS"},
			Usage: "listen address of /healthz, /readyz and /metrics: 127.0.0.1:8080 for this host only, :8080 in a container (off when empty, the default)"},
		&cli.StringFlag{Name: FlagLogFormat, EnvVars: []string{"MICRO_LOG_FORMAT"}, Value: FormatAuto,
			Usage: "log format: auto (text on a terminal, JSON otherwise), text or json"},
		&cli.DurationFlag{Name: FlagShutdownTimeout, EnvVars: []string{"MICRO_SHUTDOWN_TIMEOUT"}, Value: DefaultShutdownTimeout,
			Usage: "on SIGTERM or SIGINT, how long running commands may take to finish and reply before the bot exits"},
	}
}

// Config is what the operations flags say.
type Config struct {
	// HTTPAddress is where the Server listens; empty: nowhere.
	HTTPAddress string
	// LogFormat is FormatAuto, FormatText or FormatJSON.
	LogFormat string
	// ShutdownTimeout bounds the draining of running commands.
	ShutdownTimeout time.Duration
}

// ConfigFromCLI reads and checks the flags of [Flags].
func ConfigFromCLI(c *cli.Context) (Config, error) {
	cfg := Config{
		HTTPAddress:     c.String(FlagHTTPAddress),
		LogFormat:       c.String(FlagLogFormat),
		ShutdownTimeout: c.Duration(FlagShutdownTimeout),
	}
	if cfg.LogFormat == "" {
		cfg.LogFormat = FormatAuto
	}
	if err := checkFormat(cfg.LogFormat); err != nil {
		return Config{}, err
	}
	if cfg.HTTPAddress != "" {
		if _, _, err := net.SplitHostPort(cfg.HTTPAddress); err != nil {
			return Config{}, fmt.Errorf("--%s %q: want host:port, e.g. 127.0.0.1:8080 or :8080", FlagHTTPAddress, cfg.HTTPAddress)
		}
	}
	if cfg.ShutdownTimeout <= 0 {
		return Config{}, fmt.Errorf("--%s must be positive (was %s)", FlagShutdownTimeout, cfg.ShutdownTimeout)
	}
	return cfg, nil
}
