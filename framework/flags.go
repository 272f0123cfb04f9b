package framework

// This file is the framework's command-line helper for services: the one
// place outside cmd/ that knows urfave/cli. It maps the flags onto Options.

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Flag names of the framework (see Flags). Each has the environment variable
// MICRO_ + the upper-cased name.
const (
	FlagRegistry             = "registry"
	FlagRegistryAddress      = "registry_address"
	FlagRegistrySharedDir    = "registry_shared_dir"
	FlagRegisterTTL          = "register_ttl"
	FlagRegisterInterval     = "register_interval"
	FlagSelector             = "selector"
	FlagClientRetries        = "client_retries"
	FlagClientRequestTimeout = "client_request_timeout"
	FlagServerName           = "server_name"
	FlagServerVersion        = "server_version"
	FlagServerID             = "server_id"
	FlagServerAddress        = "server_address"
	FlagServerAdvertise      = "server_advertise"
	FlagServerMetadata       = "server_metadata"
	FlagServerMaxBodySize    = "server_max_body_size"
	FlagServerMaxConns       = "server_max_conns"
	FlagBroker               = "broker"
	FlagBrokerAddress        = "broker_address"
	FlagBrokerConnectTimeout = "broker_connect_timeout"
	FlagBrokerFormat         = "broker_format"
)

func env(name string) []string { return []string{"MICRO_" + strings.ToUpper(name)} }

// Flags returns the framework's command-line flags, new each call, named as
// go-micro's, each with a MICRO_* environment variable:
//
//	--registry                 registry plugin: local (default), memory, consul   $MICRO_REGISTRY
//	--registry_address         comma-separated addresses (local: a directory)     $MICRO_REGISTRY_ADDRESS
//	--registry_shared_dir      trust a local directory other users may write to   $MICRO_REGISTRY_SHARED_DIR
//	--register_ttl             node TTL, seconds or a duration (default 30s)      $MICRO_REGISTER_TTL
//	--register_interval        re-registration interval (default 15s)            $MICRO_REGISTER_INTERVAL
//	--selector                 random (default) or roundrobin                     $MICRO_SELECTOR
//	--client_retries           retries where safe (default 1)                     $MICRO_CLIENT_RETRIES
//	--client_request_timeout   call timeout (default 5s)                          $MICRO_CLIENT_REQUEST_TIMEOUT
//	--server_name              service name                                       $MICRO_SERVER_NAME
//	--server_version           service version                                    $MICRO_SERVER_VERSION
//	--server_id                node id (default: name-UUID)                       $MICRO_SERVER_ID
//	--server_address           listen address (default 127.0.0.1:0)               $MICRO_SERVER_ADDRESS
//	--server_advertise         address published instead of the listener's        $MICRO_SERVER_ADVERTISE
//	--server_metadata          node metadata, key=value, repeatable               $MICRO_SERVER_METADATA
//	--server_max_body_size     largest request body, bytes or 512KiB/4MiB (4MiB)  $MICRO_SERVER_MAX_BODY_SIZE
//	--server_max_conns         connections open at once; more get a 503 (1024)    $MICRO_SERVER_MAX_CONNS
//	--broker                   broker plugin: http (default), memory, nats, mqtt  $MICRO_BROKER
//	--broker_address           http: inbox listen address; nats, mqtt: servers    $MICRO_BROKER_ADDRESS
//	--broker_connect_timeout   bound of the broker's first connection (10s)       $MICRO_BROKER_CONNECT_TIMEOUT
//	--broker_format            nats: go-micro (default) or nats (NATS headers)    $MICRO_BROKER_FORMAT
//
// A service reads them with [WithArgs]; a program with its own cli.App adds
// them to its flags and turns the parsed context into options with
// [FlagOptions].
func Flags() []cli.Flag {
	d := defaultOptions()
	return []cli.Flag{
		&cli.StringFlag{Name: FlagRegistry, EnvVars: env(FlagRegistry), Value: d.RegistryName,
			Usage: "registry for discovery: " + strings.Join(registries.Names(), ", ")},
		&cli.StringFlag{Name: FlagRegistryAddress, EnvVars: env(FlagRegistryAddress),
			Usage: "comma-separated list of registry addresses (local: a directory shared by the services of this host)"},
		&cli.BoolFlag{Name: FlagRegistrySharedDir, EnvVars: env(FlagRegistrySharedDir),
			Usage: "trust a local registry directory that another user owns or others may write to, and their registrations in it (anyone who may write there adds services, and commands of a bot)"},
		&cli.GenericFlag{Name: FlagRegisterTTL, EnvVars: env(FlagRegisterTTL), Value: &Duration{d.RegisterTTL},
			Usage: "how long a node stays registered without re-registering: seconds (30) or a duration (30s)"},
		&cli.GenericFlag{Name: FlagRegisterInterval, EnvVars: env(FlagRegisterInterval), Value: &Duration{d.RegisterInterval},
			Usage: "how often a node registers again: seconds or a duration; 0 registers only at start"},
		&cli.StringFlag{Name: FlagSelector, EnvVars: env(FlagSelector), Value: d.Selector,
			Usage: "how a call picks the node of a service: " + strings.Join(selectors.Names(), ", ")},
		&cli.IntFlag{Name: FlagClientRetries, EnvVars: env(FlagClientRetries), Value: d.ClientRetries,
			Usage: "how many other nodes a call tries when that is safe (the request never reached a server, or it is idempotent)"},
		&cli.GenericFlag{Name: FlagClientRequestTimeout, EnvVars: env(FlagClientRequestTimeout), Value: &Duration{d.ClientRequestTimeout},
			Usage: "timeout of a call: seconds or a duration"},
		&cli.StringFlag{Name: FlagServerName, EnvVars: env(FlagServerName), Usage: "name of the service (go.micro.srv.example)"},
		&cli.StringFlag{Name: FlagServerVersion, EnvVars: env(FlagServerVersion), Usage: "version of the service"},
		&cli.StringFlag{Name: FlagServerID, EnvVars: env(FlagServerID), Usage: "id of the node; generated if not given"},
		&cli.StringFlag{Name: FlagServerAddress, EnvVars: env(FlagServerAddress), Value: d.Address,
			Usage: "listen address of the server; port 0 picks a free one"},
		&cli.StringFlag{Name: FlagServerAdvertise, EnvVars: env(FlagServerAdvertise),
			Usage: "address published in the registry instead of the listen address"},
		&cli.StringSliceFlag{Name: FlagServerMetadata, EnvVars: env(FlagServerMetadata),
			Usage: "node metadata as key=value; repeat the flag or separate with commas"},
		&cli.GenericFlag{Name: FlagServerMaxBodySize, EnvVars: env(FlagServerMaxBodySize), Value: &Size{d.MaxBodySize},
			Usage: "largest request body the server accepts: bytes, or with KiB/MiB/GiB"},
		&cli.IntFlag{Name: FlagServerMaxConns, EnvVars: env(FlagServerMaxConns), Value: d.MaxConns,
			Usage: "how many connections the server keeps open at once; more are answered with a 503 and closed"},
		&cli.StringFlag{Name: FlagBroker, EnvVars: env(FlagBroker), Value: d.BrokerName,
			Usage: "broker for publish and subscribe: " + strings.Join(brokers.Names(), ", ")},
		&cli.StringFlag{Name: FlagBrokerAddress, EnvVars: env(FlagBrokerAddress),
			Usage: "http: the inbox's listen address (default 127.0.0.1:0); nats, mqtt: comma-separated server addresses"},
		&cli.GenericFlag{Name: FlagBrokerConnectTimeout, EnvVars: env(FlagBrokerConnectTimeout), Value: &Duration{d.BrokerConnectTimeout},
			Usage: "how long the first connection to the broker may take: seconds or a duration"},
		&cli.StringFlag{Name: FlagBrokerFormat, EnvVars: env(FlagBrokerFormat), DefaultText: "go-micro",
			Usage: "the format messages are published in, for --broker=nats: go-micro (go-micro's JSON message, the only one go-micro's nats subscribers read; the default) or nats (NATS headers and the raw body, for topics only NATS clients and microbot read); subscribers read both. http and mqtt always send go-micro's"},
	}
}

// ErrHelp is returned by NewService when the command line given with
// WithArgs asked for --help or --version: the text is printed, and the
// program should exit with status 0.
var ErrHelp = errors.New("help requested")

// parseArgs parses o.Args with the framework's flags and returns the
// options they set.
func parseArgs(o Options) ([]Option, error) {
	args := o.Args
	if len(args) == 0 {
		args = os.Args[:1]
	}
	var opts []Option
	ran := false
	app := &cli.App{
		Name:            filepath.Base(args[0]),
		Usage:           o.Name,
		Version:         o.Version,
		Flags:           Flags(),
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			ran = true
			var err error
			opts, err = FlagOptions(c)
			return err
		},
	}
	if err := app.Run(args); err != nil {
		return nil, err
	}
	if !ran {
		return nil, ErrHelp
	}
	return opts, nil
}

// FlagOptions returns the options a parsed command line whose flags include
// Flags() sets: one for each framework flag given on the command line or in
// its environment variable. Apply them after the options set in code, so
// the flags given win and those left unset change nothing.
func FlagOptions(c *cli.Context) ([]Option, error) {
	var opts []Option
	set := c.IsSet
	if set(FlagRegistry) || set(FlagRegistryAddress) {
		name, addrs := c.String(FlagRegistry), splitList(c.String(FlagRegistryAddress))
		opts = append(opts, func(o *Options) {
			o.Registry = nil // a registry named on the command line wins over one set in code
			if set(FlagRegistry) {
				o.RegistryName = name
			}
			o.RegistryAddrs = addrs
		})
	}
	if set(FlagBroker) || set(FlagBrokerAddress) {
		name, addrs := c.String(FlagBroker), splitList(c.String(FlagBrokerAddress))
		opts = append(opts, func(o *Options) {
			o.Broker = nil // a broker named on the command line wins over one set in code
			if set(FlagBroker) {
				o.BrokerName = name
			}
			o.BrokerAddrs = addrs
		})
	}
	if set(FlagBrokerFormat) {
		opts = append(opts, WithBrokerFormat(c.String(FlagBrokerFormat)))
	}
	if set(FlagBrokerConnectTimeout) {
		opts = append(opts, WithBrokerConnectTimeout(c.Generic(FlagBrokerConnectTimeout).(*Duration).D))
	}
	if set(FlagRegistrySharedDir) {
		shared := c.Bool(FlagRegistrySharedDir)
		opts = append(opts, func(o *Options) { o.RegistrySharedDir = shared })
	}
	if set(FlagRegisterTTL) {
		opts = append(opts, WithRegisterTTL(c.Generic(FlagRegisterTTL).(*Duration).D))
	}
	if set(FlagRegisterInterval) {
		opts = append(opts, WithRegisterInterval(c.Generic(FlagRegisterInterval).(*Duration).D))
	}
	if set(FlagSelector) {
		opts = append(opts, WithSelector(c.String(FlagSelector)))
	}
	if set(FlagClientRetries) {
		opts = append(opts, WithClientRetries(c.Int(FlagClientRetries)))
	}
	if set(FlagClientRequestTimeout) {
		opts = append(opts, WithClientRequestTimeout(c.Generic(FlagClientRequestTimeout).(*Duration).D))
	}
	for name, with := range map[string]func(string) Option{
		FlagServerName: WithName, FlagServerVersion: WithVersion, FlagServerID: WithID,
		FlagServerAddress: WithAddress, FlagServerAdvertise: WithAdvertise,
	} {
		if set(name) {
			opts = append(opts, with(c.String(name)))
		}
	}
	if set(FlagServerMetadata) {
		flagged := map[string]string{}
		for _, kv := range c.StringSlice(FlagServerMetadata) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--%s %q: want key=value", FlagServerMetadata, kv)
			}
			flagged[k] = v
		}
		opts = append(opts, func(o *Options) { // added to the metadata set in code
			md := maps.Clone(o.Metadata)
			if md == nil {
				md = map[string]string{}
			}
			maps.Copy(md, flagged)
			o.Metadata = md
		})
	}
	if set(FlagServerMaxBodySize) {
		opts = append(opts, WithMaxBodySize(c.Generic(FlagServerMaxBodySize).(*Size).N))
	}
	if set(FlagServerMaxConns) {
		n := c.Int(FlagServerMaxConns)
		if n <= 0 {
			return nil, fmt.Errorf("--%s %d: want a positive number of connections", FlagServerMaxConns, n)
		}
		opts = append(opts, WithMaxConns(n))
	}
	return opts, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Duration is a cli.Generic flag value holding a time.Duration that also
// accepts a bare number of seconds, as go-micro's --register_ttl=30 does.
type Duration struct{ D time.Duration }

// Set parses "30" (seconds) or a time.ParseDuration string ("1m30s").
func (d *Duration) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("negative duration %q", s)
		}
		d.D = time.Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither seconds nor a duration like 30s", s)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", s)
	}
	d.D = v
	return nil
}

// String returns the duration in Go's notation.
func (d *Duration) String() string {
	if d == nil {
		return ""
	}
	return d.D.String()
}

// Size is a cli.Generic flag value holding a number of bytes, written as a
// plain number or with a KiB, MiB or GiB (or K, M, G, KB, MB, GB) suffix,
// all powers of 1024.
type Size struct{ N int64 }

// Set parses "4194304", "4MiB", "512KiB".
func (z *Size) Set(s string) error {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix []string
		mult   int64
	}{
		{[]string{"GiB", "GB", "G"}, 1 << 30},
		{[]string{"MiB", "MB", "M"}, 1 << 20},
		{[]string{"KiB", "KB", "K"}, 1 << 10},
		{[]string{"B"}, 1},
	} {
		done := false
		for _, suf := range u.suffix {
			if len(t) > len(suf) && strings.EqualFold(t[len(t)-len(suf):], suf) {
				t, mult, done = strings.TrimSpace(t[:len(t)-len(suf)]), u.mult, true
				break
			}
		}
		if done {
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a positive size like 4194304, 512KiB or 4MiB", s)
	}
	z.N = n * mult
	return nil
}

// String returns the size in the largest unit that divides it.
func (z *Size) String() string {
	if z == nil {
		return ""
	}
	switch n := z.N; {
	case n > 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(n, 10)
	}
}
