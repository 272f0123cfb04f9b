package xmppclient

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"
)

// TLSMode says how a client secures its connection.
type TLSMode int

// TLS modes.
const (
	// StartTLS connects in the clear on the xmpp-client port (5222) and
	// upgrades with STARTTLS, which the server must offer. The default.
	StartTLS TLSMode = iota
	// DirectTLS speaks TLS from the first byte (the xmpps-client port,
	// 5223; XEP-0368).
	DirectTLS
	// NoTLS never encrypts: for development servers on loopback only.
	// PLAIN still needs AllowPlain.
	NoTLS
)

// String names the mode as the --xmpp_tls flag spells it.
func (m TLSMode) String() string {
	switch m {
	case DirectTLS:
		return "direct"
	case NoTLS:
		return "none"
	default:
		return "starttls"
	}
}

// Defaults of a client's limits and timers.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultPingInterval = time.Minute
	DefaultPingTimeout  = 20 * time.Second
	// DefaultMaxSendSize is prosody's default c2s stanza size limit.
	DefaultMaxSendSize = 256 << 10
	// DefaultResource is the resource asked for when the JID has none.
	DefaultResource = "microbot"
)

type config struct {
	server       string
	tlsMode      TLSMode
	tlsConfig    *tls.Config
	allowPlain   bool
	mechanisms   []string
	timeout      time.Duration
	pingInterval time.Duration
	pingTimeout  time.Duration
	maxStanza    int64
	maxSend      int
	queue        int
	logger       *slog.Logger
	dial         func(ctx context.Context, network, addr string) (net.Conn, error)
	lookupSRV    func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

func defaultConfig() config {
	d := &net.Dialer{Timeout: DefaultTimeout, KeepAlive: 30 * time.Second}
	return config{
		mechanisms:   DefaultMechanisms(),
		timeout:      DefaultTimeout,
		pingInterval: DefaultPingInterval,
		pingTimeout:  DefaultPingTimeout,
		maxStanza:    DefaultMaxStanzaSize,
		maxSend:      DefaultMaxSendSize,
		queue:        256,
		logger:       slog.Default(),
		dial:         d.DialContext,
		lookupSRV:    net.DefaultResolver.LookupSRV,
	}
}

// Option configures a Client.
type Option func(*config)

// WithServer connects to addr ("host:port") instead of looking up the
// domain's SRV records (_xmpp-client._tcp). The TLS certificate is still
// checked against the JID's domain.
func WithServer(addr string) Option { return func(c *config) { c.server = addr } }

// WithTLSMode chooses STARTTLS (the default), direct TLS or no TLS.
func WithTLSMode(m TLSMode) Option { return func(c *config) { c.tlsMode = m } }

// WithTLSConfig sets the TLS configuration: trusted roots (RootCAs) or,
// for development servers only, InsecureSkipVerify. ServerName defaults to
// the JID's domain.
func WithTLSConfig(tc *tls.Config) Option { return func(c *config) { c.tlsConfig = tc } }

// WithAllowPlain lets the client send the password with SASL PLAIN on a
// connection without TLS. Never do this outside a development machine.
func WithAllowPlain(allow bool) Option { return func(c *config) { c.allowPlain = allow } }

// WithMechanisms restricts and orders the SASL mechanisms the client may
// use (default DefaultMechanisms).
func WithMechanisms(names ...string) Option {
	return func(c *config) { c.mechanisms = append([]string(nil), names...) }
}

// WithTimeout bounds connecting, the stream negotiation, and each write.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithKeepalive sets how long the stream may be silent before the client
// pings the server (XEP-0199), and how long it then waits for any data
// before it declares the stream dead. A dead stream is thus detected
// within interval+timeout. An interval of 0 turns keepalive off.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(c *config) { c.pingInterval, c.pingTimeout = interval, timeout }
}

// WithMaxStanzaSize bounds the bytes of one incoming stanza (default
// DefaultMaxStanzaSize); a larger one ends the stream with an error.
func WithMaxStanzaSize(n int64) Option { return func(c *config) { c.maxStanza = n } }

// WithMaxSendSize bounds the bytes of one outgoing stanza (default
// DefaultMaxSendSize); Send refuses a larger one.
func WithMaxSendSize(n int) Option { return func(c *config) { c.maxSend = n } }

// WithQueue sets how many received messages and presences may wait for
// Recv before the client stops reading from the network (default 256).
func WithQueue(n int) Option { return func(c *config) { c.queue = n } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithDialer sets the function that opens the TCP connection (default a
// net.Dialer with the client's timeout): for proxies, and for tests that
// count connection attempts.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *config) { c.dial = dial }
}

// WithResolver sets the resolver used for SRV lookups.
func WithResolver(r *net.Resolver) Option {
	return func(c *config) { c.lookupSRV = r.LookupSRV }
}
