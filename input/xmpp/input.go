package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/trustedfile"
)

// Names of this input in the input table.
const (
	// Name is --inputs=xmpp.
	Name = "xmpp"
	// HipChatName is --inputs=hipchat: the same input, its account given
	// the HipChat way (see HipChatAccount; HipChat spoke XMPP).
	HipChatName = "hipchat"
)

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
	// DefaultNick is the room nick when neither Config.Nick nor a JID
	// localpart gives one.
	DefaultNick = "microbot"
)

// maxCAFileSize bounds Config.CAFile (Debian's whole CA bundle is 200 KB).
const maxCAFileSize = 4 << 20

// Input is the XMPP input. Build it with [New] (or [NewHipChat]) and open it
// with Stream. It is safe for concurrent use.
type Input struct {
	name string
	opts options
	log  *slog.Logger

	cfg *settings
	cur atomic.Pointer[conn]
}

// settings is the checked configuration.
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
// xmppclient.WithKeepalive); Config.PingInterval overrides the interval.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(o *options) { o.pingInterval, o.pingTimeout = interval, timeout }
}

// WithClientOptions adds options to every client the input dials (after
// those from the Config), e.g. xmppclient.WithDialer.
func WithClientOptions(opts ...xmppclient.Option) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// Config is the XMPP input's configuration: the bot's account, its rooms,
// and how to reach and trust the server.
type Config struct {
	// JID is the bot's account, bot@example.org[/resource].
	JID string
	// Password is the account's password.
	Password string
	// Rooms are the rooms (XEP-0045) to join, e.g. ops@conference.example.org;
	// blank entries are skipped.
	Rooms []string
	// Nick is the nick in rooms, and the name that addresses the bot there
	// (default: the JID's localpart).
	Nick string
	// Server is the server's address host:port, instead of the SRV records
	// of the JID's domain.
	Server string
	// TLS is "starttls" (the default: required), "direct" (TLS from the
	// first byte, port 5223) or "none" (development servers only).
	TLS string
	// CAFile is a PEM file of the CA certificates to trust for the server
	// (instead of the system's). It must belong to this user or to root
	// and not be writable by everyone (see package internal/trustedfile),
	// and hold at most 4 MiB.
	CAFile string
	// InsecureSkipVerify does not verify the server's certificate
	// (development servers only).
	InsecureSkipVerify bool
	// AllowPlain allows sending the password with SASL PLAIN without TLS
	// (development servers only).
	AllowPlain bool
	// PingInterval is how long a silent stream waits before pinging the
	// server (default: WithKeepalive's, xmppclient.DefaultPingInterval).
	PingInterval time.Duration
	// Names names the fields in error messages.
	Names input.Names
}

// DefaultConfig is a configuration with the defaults filled in; the account
// is still to be given.
func DefaultConfig() Config {
	return Config{TLS: "starttls", PingInterval: xmppclient.DefaultPingInterval}
}

// New returns an XMPP input on the account of cfg. It checks cfg and reads
// the CA file, but does not connect; a missing or malformed setting is an
// error naming the field (never showing the password).
func New(cfg Config, opts ...Option) (*Input, error) { return newInput(Name, cfg, opts) }

// NewHipChat returns the input "hipchat" (--inputs=hipchat): the XMPP input
// under HipChat's name, its account usually given with HipChatAccount.
func NewHipChat(cfg Config, opts ...Option) (*Input, error) { return newInput(HipChatName, cfg, opts) }

// HipChatAccount returns the JID and server address of an account given the
// HipChat way: username is a JID, or a user name on server; server is
// host[:port], port 5222 by default, and may be empty.
func HipChatAccount(username, server string) (jid, addr string) {
	jid, server = strings.TrimSpace(username), strings.TrimSpace(server)
	if server == "" {
		return jid, ""
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		host, port = server, "5222"
	}
	if jid != "" && !strings.Contains(jid, "@") {
		jid += "@" + host
	}
	return jid, net.JoinHostPort(host, port)
}

func newInput(name string, cfg Config, opts []Option) (*Input, error) {
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
	in := &Input{name: name, opts: o, log: o.logger.With("input", name)}
	if err := in.configure(cfg); err != nil {
		return nil, err
	}
	return in, nil
}

// String returns "xmpp" (or "hipchat").
func (in *Input) String() string { return in.name }

// configure checks cfg and keeps what Stream needs.
func (in *Input) configure(cfg Config) error {
	name := cfg.Names.Of
	s := &settings{password: cfg.Password}
	raw := strings.TrimSpace(cfg.JID)
	if raw == "" {
		return fmt.Errorf("xmpp: %s is required: the bot's account, e.g. bot@example.org", name("JID"))
	}
	j, err := xmppclient.ParseJID(raw)
	if err != nil || j.Local == "" {
		return fmt.Errorf("xmpp: %s %q is not an account JID like bot@example.org", name("JID"), raw)
	}
	s.jid = j
	if cfg.Password == "" {
		return fmt.Errorf("xmpp: %s is required", name("Password"))
	}
	for _, r := range cfg.Rooms {
		if r = strings.TrimSpace(r); r == "" {
			continue // "a,,b" or a trailing comma in a list of rooms
		}
		room, err := xmppclient.ParseJID(r)
		if err != nil || room.Local == "" || room.Resource != "" {
			return fmt.Errorf("xmpp: %s: %q is not a room JID like ops@conference.example.org", name("Rooms"), r)
		}
		s.rooms = append(s.rooms, room)
	}
	s.nick = strings.TrimSpace(cfg.Nick)
	if s.nick == "" {
		s.nick = j.Local
	}
	if s.nick == "" || len(s.nick) > 256 || strings.ContainsFunc(s.nick, func(r rune) bool { return r < ' ' }) {
		return fmt.Errorf("xmpp: %s %q is not a usable nick", name("Nick"), s.nick)
	}

	var opts []xmppclient.Option
	if srv := strings.TrimSpace(cfg.Server); srv != "" {
		host, port, err := net.SplitHostPort(srv)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return fmt.Errorf("xmpp: %s %q must be host:port, e.g. xmpp.example.org:5222", name("Server"), srv)
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
		return fmt.Errorf("xmpp: %s %q: want starttls, direct or none", name("TLS"), cfg.TLS)
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // explicit opt-in for dev servers
	if cfg.CAFile != "" {
		pem, err := trustedfile.Read(cfg.CAFile, maxCAFileSize, "whoever may change it can pose as the XMPP server")
		if err != nil {
			return fmt.Errorf("xmpp: %s: %w", name("CAFile"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("xmpp: %s %s holds no PEM certificate", name("CAFile"), cfg.CAFile)
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
		in.log.Warn("xmpp: the server's certificate will not be verified (" + name("InsecureSkipVerify") + ")")
	}
	in.cfg = s
	return nil
}

// Account returns the bot's account, its bare JID (bot@example.org): what
// one connection at a time may present in the rooms.
func (in *Input) Account() string { return in.cfg.jid.Bare().String() }

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
	c := newConn(in)
	cl, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	in.cur.Store(c)
	c.start(cl)
	return c, nil
}

var (
	_ input.Input          = (*Input)(nil)
	_ input.StatusReporter = (*Input)(nil)
	_ input.Poster         = (*Input)(nil)
)
