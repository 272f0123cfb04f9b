package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
)

// Names of this input in the input table.
const (
	// Name is --inputs=xmpp.
	Name = "xmpp"
	// HipChatName is --inputs=hipchat: the same input configured with the
	// seeds' --hipchat_* flags (HipChat spoke XMPP).
	HipChatName = "hipchat"
)

// Flag names; each has the environment variable MICRO_ + its upper-case name.
const (
	FlagJID                = "xmpp_jid"
	FlagPassword           = "xmpp_password"
	FlagRooms              = "xmpp_rooms"
	FlagNick               = "xmpp_nick"
	FlagServer             = "xmpp_server"
	FlagTLS                = "xmpp_tls"
	FlagCAFile             = "xmpp_ca_file"
	FlagInsecureSkipVerify = "xmpp_insecure_skip_verify"
	FlagAllowPlain         = "xmpp_allow_plain"
	FlagPingInterval       = "xmpp_ping_interval"

	FlagHipChatUsername = "hipchat_username"
	FlagHipChatPassword = "hipchat_password"
	FlagHipChatServer   = "hipchat_server"
)

// env returns a flag's environment variable.
func env(flag string) string { return "MICRO_" + strings.ToUpper(flag) }

// ErrPermanent is wrapped by the errors of Stream and Recv that retrying
// with the same configuration cannot fix: the server refused the
// credentials ("xmpp: authentication failed for bot@example.org:
// not-authorized"), offers no acceptable SASL mechanism or no TLS, or
// presented a certificate that does not verify. It is [input.ErrPermanent],
// which the bot recognises: it then retries only at its slowest pace
// instead of reconnecting in a loop. (Such errors also have a method
// Permanent() bool returning true.)
var ErrPermanent = input.ErrPermanent

// permanentError marks an error as permanent.
type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent reports true: retrying cannot help.
func (e *permanentError) Permanent() bool { return true }

// classify marks the client errors that retrying cannot fix.
func classify(err error) error {
	var cv *tls.CertificateVerificationError
	var ui x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var se *xmppclient.StreamError
	switch {
	case errors.Is(err, xmppclient.ErrAuth), errors.Is(err, xmppclient.ErrTLSRequired),
		errors.As(err, &cv), errors.As(err, &ui), errors.As(err, &hn), errors.As(err, &ci):
		return &permanentError{err}
	case errors.As(err, &se) && (se.Condition == "host-unknown" || se.Condition == "not-authorized"):
		return &permanentError{err}
	}
	return err
}

// Defaults of the reconnect loop.
const (
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
	// DefaultStableAfter is how long a connection must last for the backoff
	// to start over: a server that accepts and drops the bot at once (for
	// instance another instance logged in with the same resource) gets
	// ever slower reconnects, not a storm.
	DefaultStableAfter = time.Minute
	// DefaultNick is the room nick when neither --xmpp_nick nor a JID
	// localpart gives one.
	DefaultNick = "microbot"
)

// Input is the XMPP input. Build it with [New] (or [NewHipChat]), configure
// it with Init and open it with Stream. It is safe for concurrent use.
type Input struct {
	name string
	opts options
	log  *slog.Logger

	cfg *settings // set by Init
	cur atomic.Pointer[conn]
}

// settings is the configuration read from the flags.
type settings struct {
	jid        xmppclient.JID
	password   string
	rooms      []xmppclient.JID
	nick       string
	clientOpts []xmppclient.Option
}

// Option adjusts an Input.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	backoffMin   time.Duration
	backoffMax   time.Duration
	stableAfter  time.Duration
	pingInterval time.Duration
	pingTimeout  time.Duration
	clientOpts   []xmppclient.Option
	joinNicks    int
}

// WithLogger sends the input's logs to l (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBackoff sets the reconnect backoff: min doubled at each failed
// attempt up to max, with jitter (default 1 s to 1 min).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.backoffMin, o.backoffMax = min, max }
}

// WithStableAfter sets how long a connection must last before the backoff
// starts over (default DefaultStableAfter).
func WithStableAfter(d time.Duration) Option { return func(o *options) { o.stableAfter = d } }

// WithKeepalive sets the ping interval and timeout of the client (see
// xmppclient.WithKeepalive); the --xmpp_ping_interval flag overrides the
// interval.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(o *options) { o.pingInterval, o.pingTimeout = interval, timeout }
}

// WithClientOptions adds options to every client the input dials (after
// those from the flags), e.g. xmppclient.WithDialer.
func WithClientOptions(opts ...xmppclient.Option) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// New returns an unconfigured XMPP input; Init configures it.
func New(opts ...Option) *Input { return newInput(Name, opts) }

// NewHipChat returns the input "hipchat" (--inputs=hipchat): the XMPP input
// whose account comes from --hipchat_username, --hipchat_password and
// --hipchat_server (the other --xmpp_* flags, such as --xmpp_rooms, apply
// to it too when they are defined).
func NewHipChat(opts ...Option) *Input { return newInput(HipChatName, opts) }

func newInput(name string, opts []Option) *Input {
	o := options{
		backoffMin:   DefaultBackoffMin,
		backoffMax:   DefaultBackoffMax,
		stableAfter:  DefaultStableAfter,
		pingInterval: xmppclient.DefaultPingInterval,
		pingTimeout:  xmppclient.DefaultPingTimeout,
		joinNicks:    5,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.backoffMin <= 0 {
		o.backoffMin = DefaultBackoffMin
	}
	o.backoffMax = max(o.backoffMax, o.backoffMin)
	return &Input{name: name, opts: o, log: o.logger.With("input", name)}
}

// String returns "xmpp" (or "hipchat").
func (in *Input) String() string { return in.name }

// Flags returns the input's flags, each with a MICRO_* environment variable.
func (in *Input) Flags() []cli.Flag {
	if in.name == HipChatName {
		return []cli.Flag{
			&cli.StringFlag{Name: FlagHipChatUsername, EnvVars: []string{env(FlagHipChatUsername)},
				Usage: "XMPP account of the bot for --inputs=hipchat: a JID (bot@example.org), or a user name on --hipchat_server"},
			&cli.StringFlag{Name: FlagHipChatPassword, EnvVars: []string{env(FlagHipChatPassword)},
				Usage: "password of --hipchat_username"},
			&cli.StringFlag{Name: FlagHipChatServer, EnvVars: []string{env(FlagHipChatServer)},
				Usage: "XMPP server for --inputs=hipchat, host[:port] (port 5222 by default); also the domain of a --hipchat_username without one"},
		}
	}
	return []cli.Flag{
		&cli.StringFlag{Name: FlagJID, EnvVars: []string{env(FlagJID)},
			Usage: "XMPP account of the bot, bot@example.org[/resource]"},
		&cli.StringFlag{Name: FlagPassword, EnvVars: []string{env(FlagPassword)},
			Usage: "password of --xmpp_jid (prefer the environment variable: flags show in ps)"},
		&cli.StringFlag{Name: FlagRooms, EnvVars: []string{env(FlagRooms)},
			Usage: "comma-separated rooms (XEP-0045) to join, e.g. ops@conference.example.org"},
		&cli.StringFlag{Name: FlagNick, EnvVars: []string{env(FlagNick)},
			Usage: "nick in rooms, and the name that addresses the bot there (default: the JID's localpart)"},
		&cli.StringFlag{Name: FlagServer, EnvVars: []string{env(FlagServer)},
			Usage: "server address host:port, instead of the SRV records of the JID's domain"},
		&cli.StringFlag{Name: FlagTLS, EnvVars: []string{env(FlagTLS)}, Value: "starttls",
			Usage: "starttls (required), direct (TLS from the first byte, port 5223), or none (development servers only)"},
		&cli.StringFlag{Name: FlagCAFile, EnvVars: []string{env(FlagCAFile)},
			Usage: "PEM file of the CA certificates to trust for the server (instead of the system's)"},
		&cli.BoolFlag{Name: FlagInsecureSkipVerify, EnvVars: []string{env(FlagInsecureSkipVerify)},
			Usage: "do not verify the server's certificate (development servers only)"},
		&cli.BoolFlag{Name: FlagAllowPlain, EnvVars: []string{env(FlagAllowPlain)},
			Usage: "allow sending the password with SASL PLAIN without TLS (development servers only)"},
		&cli.DurationFlag{Name: FlagPingInterval, EnvVars: []string{env(FlagPingInterval)}, Value: xmppclient.DefaultPingInterval,
			Usage: "ping the server after this much silence; a stream silent for this plus 20s is dropped and reopened"},
	}
}

// Config is the input's configuration in code (Init builds it from flags).
type Config struct {
	JID, Password      string
	Rooms              []string
	Nick               string
	Server             string
	TLS                string // "starttls" (default), "direct", "none"
	CAFile             string
	InsecureSkipVerify bool
	AllowPlain         bool
	PingInterval       time.Duration
}

// Init reads the configuration from the command line. It does not connect;
// a missing or malformed setting is an error naming the flag (never showing
// the password).
func (in *Input) Init(c *cli.Context) error {
	cfg := Config{
		JID:                c.String(FlagJID),
		Password:           c.String(FlagPassword),
		Rooms:              splitList(c.String(FlagRooms)),
		Nick:               c.String(FlagNick),
		Server:             c.String(FlagServer),
		TLS:                c.String(FlagTLS),
		CAFile:             c.String(FlagCAFile),
		InsecureSkipVerify: c.Bool(FlagInsecureSkipVerify),
		AllowPlain:         c.Bool(FlagAllowPlain),
		PingInterval:       c.Duration(FlagPingInterval),
	}
	if in.name == HipChatName {
		user, server := strings.TrimSpace(c.String(FlagHipChatUsername)), strings.TrimSpace(c.String(FlagHipChatServer))
		cfg.Password, cfg.JID, cfg.Server = c.String(FlagHipChatPassword), user, ""
		if server != "" {
			host, port, err := net.SplitHostPort(server)
			if err != nil {
				host, port = server, "5222"
			}
			cfg.Server = net.JoinHostPort(host, port)
			if user != "" && !strings.Contains(user, "@") {
				cfg.JID = user + "@" + host
			}
		}
		return in.configure(cfg, "--"+FlagHipChatUsername, "--"+FlagHipChatPassword, "--"+FlagHipChatServer)
	}
	return in.configure(cfg, "--"+FlagJID, "--"+FlagPassword, "--"+FlagServer)
}

// Configure sets the configuration directly, as Init does from flags.
func (in *Input) Configure(cfg Config) error {
	return in.configure(cfg, "JID", "Password", "Server")
}

func (in *Input) configure(cfg Config, jidName, passwordName, serverName string) error {
	s := &settings{password: cfg.Password}
	raw := strings.TrimSpace(cfg.JID)
	if raw == "" {
		return fmt.Errorf("xmpp: %s is required (%s): the bot's account, e.g. bot@example.org", jidName, envFor(jidName))
	}
	j, err := xmppclient.ParseJID(raw)
	if err != nil || j.Local == "" {
		return fmt.Errorf("xmpp: %s %q is not an account JID like bot@example.org", jidName, raw)
	}
	s.jid = j
	if cfg.Password == "" {
		return fmt.Errorf("xmpp: %s is required (%s)", passwordName, envFor(passwordName))
	}
	for _, r := range cfg.Rooms {
		room, err := xmppclient.ParseJID(r)
		if err != nil || room.Local == "" || room.Resource != "" {
			return fmt.Errorf("xmpp: --%s: %q is not a room JID like ops@conference.example.org", FlagRooms, r)
		}
		s.rooms = append(s.rooms, room)
	}
	s.nick = strings.TrimSpace(cfg.Nick)
	if s.nick == "" {
		s.nick = j.Local
	}
	if s.nick == "" || len(s.nick) > 256 || strings.ContainsFunc(s.nick, func(r rune) bool { return r < ' ' }) {
		return fmt.Errorf("xmpp: --%s %q is not a usable nick", FlagNick, s.nick)
	}

	var opts []xmppclient.Option
	if srv := strings.TrimSpace(cfg.Server); srv != "" {
		host, port, err := net.SplitHostPort(srv)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return fmt.Errorf("xmpp: %s %q must be host:port, e.g. xmpp.example.org:5222", serverName, srv)
		}
		opts = append(opts, xmppclient.WithServer(srv))
	}
	switch strings.ToLower(strings.TrimSpace(cfg.TLS)) {
	case "", "starttls":
		opts = append(opts, xmppclient.WithTLSMode(xmppclient.StartTLS))
	case "direct":
		opts = append(opts, xmppclient.WithTLSMode(xmppclient.DirectTLS))
	case "none":
		opts = append(opts, xmppclient.WithTLSMode(xmppclient.NoTLS))
	default:
		return fmt.Errorf("xmpp: --%s %q: want starttls, direct or none", FlagTLS, cfg.TLS)
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // explicit opt-in for dev servers
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return fmt.Errorf("xmpp: --%s: %w", FlagCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("xmpp: --%s %s holds no PEM certificate", FlagCAFile, cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	opts = append(opts, xmppclient.WithTLSConfig(tc), xmppclient.WithAllowPlain(cfg.AllowPlain))
	interval := in.opts.pingInterval
	if cfg.PingInterval > 0 {
		interval = cfg.PingInterval
	}
	opts = append(opts, xmppclient.WithKeepalive(interval, in.opts.pingTimeout), xmppclient.WithLogger(in.log))
	s.clientOpts = append(opts, in.opts.clientOpts...)
	if cfg.InsecureSkipVerify {
		in.log.Warn("xmpp: the server's certificate will not be verified (--" + FlagInsecureSkipVerify + ")")
	}
	in.cfg = s
	return nil
}

func envFor(name string) string {
	if strings.HasPrefix(name, "--") {
		return env(strings.TrimPrefix(name, "--"))
	}
	return "Config." + name
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Connected reports whether the input is connected to the server right now
// (input.StatusReporter).
func (in *Input) Connected() bool {
	c := in.cur.Load()
	return c != nil && c.connected()
}

// Stream connects, authenticates, joins the rooms and returns the
// connection. From then on the connection reconnects by itself when the
// server drops it (capped exponential backoff with jitter, rooms joined
// again), so Recv fails only after Close or with a permanent error.
//
// A first connection that fails is returned as an error for the caller to
// retry; an error that retrying cannot fix (bad credentials, an untrusted
// certificate) wraps [ErrPermanent].
func (in *Input) Stream(ctx context.Context) (input.Conn, error) {
	if in.cfg == nil {
		return nil, errors.New("xmpp: Stream called before Init")
	}
	c := newConn(in)
	cl, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	in.cur.Store(c)
	c.start(cl)
	return c, nil
}
