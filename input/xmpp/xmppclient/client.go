package xmppclient

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// ErrClosed is returned by a Client's methods after Close.
var ErrClosed = errors.New("xmpp: client closed")

// ErrTLSRequired: the configuration requires TLS (the default) and the
// server does not offer STARTTLS, or the server requires TLS and the
// configuration forbids it. Like an *AuthError, retrying cannot help.
var ErrTLSRequired = errors.New("xmpp: TLS required")

// Client is one authenticated XMPP session (RFC 6120): a TCP connection
// secured with TLS, authenticated with SASL, with a bound resource. It
// answers pings and IQ requests it does not understand by itself, pings
// the server when the stream is idle, and hands messages and presences to
// Recv. All methods are safe for concurrent use.
//
// A Client does not reconnect: when the stream breaks, Recv returns the
// error and the caller dials a new Client.
type Client struct {
	cfg      config
	user     JID // the account, as configured
	password string
	jid      JID // the full JID the server bound
	domain   string

	conn net.Conn
	tls  bool
	mech string // the SASL mechanism that authenticated the stream
	r    *streamReader
	w    *streamWriter
	log  *slog.Logger

	in      chan Stanza   // messages and presences, closed when reading ends
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the reader goroutine ends
	wg      sync.WaitGroup

	mu       sync.Mutex
	err      error // why the stream ended
	pending  map[string]*pendingIQ
	closeErr sync.Once
}

type pendingIQ struct {
	to  string
	res chan *IQ
}

// Dial connects to the server of user's domain, secures and authenticates
// the stream with password, and binds a resource (user's, or
// DefaultResource). The context bounds the whole negotiation, as does the
// client's timeout.
//
// Errors that retrying cannot fix wrap ErrAuth (see *AuthError) or
// ErrTLSRequired, or are TLS certificate verification errors.
func Dial(ctx context.Context, user JID, password string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if user.Local == "" || user.Domain == "" {
		return nil, fmt.Errorf("xmpp: %q is not an account JID (user@domain)", user)
	}
	c := &Client{
		cfg:      cfg,
		user:     user,
		password: password,
		domain:   user.Domain,
		log:      cfg.logger.With("jid", user.Bare().String()),
		in:       make(chan Stanza, cfg.queue),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		pending:  map[string]*pendingIQ{},
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	// The deadline bounds every read and write of the negotiation; the
	// context can also abort it early.
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	err = c.negotiate(ctx)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = c.conn.Close()
		if (ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)) && !isPermanent(err) {
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			err = fmt.Errorf("xmpp: negotiating with %s: %w (%v)", user.Domain, cause, err)
		}
		return nil, err
	}
	_ = c.conn.SetDeadline(time.Time{})
	c.r.idle.interval, c.r.idle.timeout, c.r.idle.ping = cfg.pingInterval, cfg.pingTimeout, c.keepalive
	go c.readLoop()
	return c, nil
}

func isPermanent(err error) bool {
	var cv *tls.CertificateVerificationError
	return errors.Is(err, ErrAuth) || errors.Is(err, ErrTLSRequired) || errors.As(err, &cv)
}

// connect opens the TCP (and, for DirectTLS, TLS) connection.
func (c *Client) connect(ctx context.Context) (net.Conn, error) {
	addrs, err := c.resolve(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, addr := range addrs {
		conn, err := c.cfg.dial(ctx, "tcp", addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c.cfg.tlsMode == DirectTLS {
			tc := tls.Client(conn, c.tlsConfig())
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return nil, fmt.Errorf("xmpp: TLS with %s: %w", addr, err)
			}
			c.tls = true
			return tc, nil
		}
		return conn, nil
	}
	return nil, fmt.Errorf("xmpp: cannot connect to %s: %w", c.domain, errors.Join(errs...))
}

// resolve lists the addresses to try: the configured server, or the
// domain's SRV targets, or the domain on the standard port.
func (c *Client) resolve(ctx context.Context) ([]string, error) {
	if c.cfg.server != "" {
		return []string{c.cfg.server}, nil
	}
	service, port := "xmpp-client", "5222"
	if c.cfg.tlsMode == DirectTLS {
		service, port = "xmpps-client", "5223"
	}
	_, srvs, err := c.cfg.lookupSRV(ctx, service, "tcp", c.domain)
	if err != nil || len(srvs) == 0 {
		return []string{net.JoinHostPort(c.domain, port)}, nil
	}
	if len(srvs) == 1 && srvs[0].Target == "." {
		return nil, fmt.Errorf("xmpp: %s says it offers no %s service (SRV target \".\")", c.domain, service)
	}
	addrs := make([]string, 0, len(srvs))
	for _, s := range srvs {
		addrs = append(addrs, net.JoinHostPort(trimDot(s.Target), strconv.Itoa(int(s.Port))))
	}
	return addrs, nil
}

func trimDot(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

func (c *Client) tlsConfig() *tls.Config {
	tc := &tls.Config{}
	if c.cfg.tlsConfig != nil {
		tc = c.cfg.tlsConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = c.domain
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return tc
}

// features are the stream features (RFC 6120 §4.3.2) this client uses.
type features struct {
	StartTLS *struct {
		Required *struct{} `xml:"required"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Mechanisms *struct {
		Names []string `xml:"mechanism"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms"`
	Bind    *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
	Session *struct {
		Optional *struct{} `xml:"optional"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-session session"`
}

// open starts a (new) stream on the connection and reads its features.
func (c *Client) open(ctx context.Context, from string) (*features, error) {
	c.r = newStreamReader(c.conn, c.cfg.maxStanza)
	c.w = &streamWriter{conn: c.conn, timeout: c.cfg.timeout, max: c.cfg.maxSend}
	if err := c.w.openStream(ctx, c.domain, from); err != nil {
		return nil, err
	}
	if _, err := c.r.header(); err != nil {
		return nil, err
	}
	el, err := c.r.next()
	if err != nil {
		return nil, err
	}
	if el.Name.Space != NSStream || el.Name.Local != "features" {
		return nil, fmt.Errorf("xmpp: expected stream features, got <%s xmlns=%q>", el.Name.Local, el.Name.Space)
	}
	var f features
	if err := el.decode(&f); err != nil {
		return nil, fmt.Errorf("xmpp: malformed stream features: %w", err)
	}
	return &f, nil
}

// negotiate runs TLS, SASL and resource binding (RFC 6120 §5-7).
func (c *Client) negotiate(ctx context.Context) error {
	f, err := c.open(ctx, "")
	if err != nil {
		return err
	}
	if !c.tls {
		switch {
		case c.cfg.tlsMode == NoTLS && f.StartTLS != nil && f.StartTLS.Required != nil:
			return fmt.Errorf("%w: the server requires STARTTLS and TLS is turned off", ErrTLSRequired)
		case c.cfg.tlsMode == StartTLS && f.StartTLS == nil:
			return fmt.Errorf("%w: %s does not offer STARTTLS (use direct TLS, or no TLS on a development server)", ErrTLSRequired, c.domain)
		case c.cfg.tlsMode == StartTLS:
			if err := c.startTLS(ctx); err != nil {
				return err
			}
			if f, err = c.open(ctx, c.user.Bare().String()); err != nil {
				return err
			}
		}
	}
	if f.Mechanisms == nil {
		return &AuthError{JID: c.user.String(), Condition: "the server offers no SASL authentication"}
	}
	if err := c.authenticate(ctx, f.Mechanisms.Names); err != nil {
		return err
	}
	from := ""
	if c.tls {
		from = c.user.Bare().String()
	}
	if f, err = c.open(ctx, from); err != nil {
		return err
	}
	if f.Bind == nil {
		return errors.New("xmpp: the server offers no resource binding")
	}
	if err := c.bind(ctx); err != nil {
		return err
	}
	if f.Session != nil && f.Session.Optional == nil {
		iq := &IQ{Type: IQSet, ID: newID(), Payload: &Element{XMLName: xml.Name{Space: NSSession, Local: "session"}}}
		if _, err := c.syncIQ(ctx, iq); err != nil {
			return fmt.Errorf("xmpp: session: %w", err)
		}
	}
	return nil
}

// startTLS upgrades the connection (RFC 6120 §5).
func (c *Client) startTLS(ctx context.Context) error {
	if err := c.w.write(ctx, []byte("<starttls xmlns='"+NSTLS+"'/>")); err != nil {
		return err
	}
	el, err := c.r.next()
	if err != nil {
		return err
	}
	if el.Name.Space != NSTLS || el.Name.Local != "proceed" {
		return fmt.Errorf("xmpp: STARTTLS refused (<%s/>)", el.Name.Local)
	}
	// Anything the server sent after <proceed/> and before the TLS
	// handshake would be injected into the secure stream: refuse.
	if c.r.buffered() != 0 {
		return fmt.Errorf("%w: data after <proceed/> before the TLS handshake", ErrRestrictedXML)
	}
	tc := tls.Client(c.conn, c.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("xmpp: TLS with %s: %w", c.domain, err)
	}
	c.conn, c.tls = tc, true
	return nil
}

// bind asks for the resource (RFC 6120 §7).
func (c *Client) bind(ctx context.Context) error {
	res := c.user.Resource
	if res == "" {
		res = DefaultResource
	}
	payload := &Element{XMLName: xml.Name{Space: NSBind, Local: "bind"},
		Children: []Element{{XMLName: xml.Name{Space: NSBind, Local: "resource"}, Text: res}}}
	resp, err := c.syncIQ(ctx, &IQ{Type: IQSet, ID: newID(), Payload: payload})
	if err != nil {
		return fmt.Errorf("xmpp: binding resource %q: %w", res, err)
	}
	j := resp.Payload.Child(NSBind, "jid")
	if j == nil {
		return errors.New("xmpp: bind result without a JID")
	}
	bound, err := ParseJID(j.Text)
	if err != nil {
		return fmt.Errorf("xmpp: server bound %w", err)
	}
	if bound.Bare() != c.user.Bare() {
		return fmt.Errorf("xmpp: server bound %s, not an address of %s", bound, c.user.Bare())
	}
	c.jid = bound
	return nil
}

// syncIQ sends iq and reads its response during negotiation, before the
// reader goroutine runs.
func (c *Client) syncIQ(ctx context.Context, iq *IQ) (*IQ, error) {
	if err := c.w.encode(ctx, iq); err != nil {
		return nil, err
	}
	for {
		el, err := c.r.next()
		if err != nil {
			return nil, err
		}
		if el.Name.Space != NSClient || el.Name.Local != "iq" {
			continue
		}
		var resp IQ
		if err := el.decode(&resp); err != nil || resp.ID != iq.ID {
			continue
		}
		if resp.Type == IQError {
			if resp.Error != nil {
				return nil, resp.Error
			}
			return nil, &StanzaError{Condition: "undefined-condition"}
		}
		return &resp, nil
	}
}

// JID returns the full JID the server bound for this session.
func (c *Client) JID() JID { return c.jid }

// Encrypted reports whether the stream is protected by TLS.
func (c *Client) Encrypted() bool { return c.tls }

// Mechanism returns the SASL mechanism the stream was authenticated with
// (SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN).
func (c *Client) Mechanism() string { return c.mech }

// Done is closed when the stream has ended, after Close or a failure.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the stream ended, or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Recv returns the next message or presence. When the stream has ended and
// everything received before was returned, it returns the reason (ErrClosed
// after Close).
func (c *Client) Recv(ctx context.Context) (Stanza, error) {
	select {
	case s, ok := <-c.in:
		if !ok {
			return nil, c.Err()
		}
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Send writes a stanza. Its texts are escaped by the XML encoder, so no
// user-supplied value can inject markup.
func (c *Client) Send(ctx context.Context, s Stanza) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	if err := c.w.encode(ctx, s); err != nil {
		if !errors.Is(err, ErrStanzaTooLargeToSend) && ctx.Err() == nil {
			c.fail(err) // the stream is broken
		}
		return err
	}
	return nil
}

// SendIQ sends a get or set request and waits for its result. An error
// response is returned as a *StanzaError. An empty ID is filled in.
func (c *Client) SendIQ(ctx context.Context, iq *IQ) (*IQ, error) {
	if iq.Type != IQGet && iq.Type != IQSet {
		return nil, fmt.Errorf("xmpp: SendIQ needs type get or set, not %q", iq.Type)
	}
	if iq.ID == "" {
		iq.ID = newID()
	}
	p := &pendingIQ{to: iq.To, res: make(chan *IQ, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[iq.ID] = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, iq.ID)
		c.mu.Unlock()
	}()
	if err := c.Send(ctx, iq); err != nil {
		return nil, err
	}
	select {
	case resp := <-p.res:
		if resp.Type == IQError {
			if resp.Error != nil {
				return resp, resp.Error
			}
			return resp, &StanzaError{Condition: "undefined-condition"}
		}
		return resp, nil
	case <-c.done:
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Ping sends an XEP-0199 ping to `to` (the server when empty) and waits
// for the answer. An error response from a server that does not support
// pings still proves it is there, so only a timeout or a broken stream is
// an error.
func (c *Client) Ping(ctx context.Context, to string) error {
	_, err := c.SendIQ(ctx, pingIQ(to))
	var se *StanzaError
	if errors.As(err, &se) {
		return nil
	}
	return err
}

func pingIQ(to string) *IQ {
	return &IQ{Type: IQGet, To: to, ID: newID(), Payload: &Element{XMLName: xml.Name{Space: NSPing, Local: "ping"}}}
}

// keepalive is called by the reader when the stream has been silent for
// the ping interval: it pings the server, and the answer (any data, in
// fact) keeps the stream alive.
func (c *Client) keepalive() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.pingTimeout)
		defer cancel()
		c.log.Debug("xmpp: stream idle, pinging the server")
		if err := c.Send(ctx, pingIQ("")); err != nil {
			c.log.Debug("xmpp: keepalive ping failed", "err", err)
		}
	}()
}

// Close ends the stream politely (</stream:stream>, then waits briefly for
// the server's), closes the connection and stops the reader. It is safe to
// call more than once.
func (c *Client) Close() error {
	first := false
	c.closeErr.Do(func() {
		first = true
		close(c.closing)
	})
	if !first {
		<-c.done
		return nil
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = ErrClosed
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c.w.closeStream(ctx) == nil {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
	_ = c.conn.Close()
	<-c.done
	c.wg.Wait()
	return nil
}

// fail records why the stream ended (the first reason wins) and closes the
// connection, which ends the reader.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	_ = c.conn.Close()
}

// readLoop reads stanzas until the stream ends.
func (c *Client) readLoop() {
	defer func() {
		close(c.in)
		close(c.done)
	}()
	for {
		el, err := c.r.next()
		if err != nil {
			select {
			case <-c.closing:
				err = ErrClosed
			default:
			}
			c.fail(err)
			return
		}
		if el.Name.Space != NSClient {
			c.log.Debug("xmpp: ignoring unknown top-level element", "name", el.Name.Local, "ns", el.Name.Space)
			continue
		}
		var s Stanza
		switch el.Name.Local {
		case "message":
			s = &Message{}
		case "presence":
			s = &Presence{}
		case "iq":
			s = &IQ{}
		default:
			c.log.Debug("xmpp: ignoring unknown stanza", "name", el.Name.Local)
			continue
		}
		if err := el.decode(s); err != nil {
			c.log.Warn("xmpp: dropping malformed stanza", "name", el.Name.Local, "err", err)
			continue
		}
		if iq, ok := s.(*IQ); ok {
			c.handleIQ(iq)
			continue
		}
		select {
		case c.in <- s:
		case <-c.closing:
			c.fail(ErrClosed)
			return
		}
	}
}

// handleIQ matches responses to requests and answers requests: pings with
// a result, everything else with service-unavailable (RFC 6120 §8.4).
func (c *Client) handleIQ(iq *IQ) {
	switch iq.Type {
	case IQResult, IQError:
		c.mu.Lock()
		p := c.pending[iq.ID]
		if p != nil && c.fromMatches(iq.From, p.to) {
			delete(c.pending, iq.ID)
		} else {
			p = nil
		}
		c.mu.Unlock()
		if p == nil {
			c.log.Debug("xmpp: dropping unsolicited IQ response", "stanza", describe(iq))
			return
		}
		p.res <- iq
	case IQGet, IQSet:
		var reply Stanza
		switch {
		case iq.Payload.Is(NSPing, "ping") && iq.Type == IQGet:
			reply = &IQ{Type: IQResult, ID: iq.ID, To: iq.From}
		case iq.Payload == nil:
			reply = ErrorReply(iq, ErrorModify, ConditionBadRequest)
		default:
			reply = ErrorReply(iq, ErrorCancel, ConditionServiceUnavailable)
		}
		c.wg.Add(1)
		go func() { // never block the reader on a write
			defer c.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.timeout)
			defer cancel()
			if err := c.Send(ctx, reply); err != nil {
				c.log.Debug("xmpp: answering IQ failed", "err", err)
			}
		}()
	default:
		c.log.Debug("xmpp: dropping IQ of unknown type", "stanza", describe(iq))
	}
}

// fromMatches checks that a response comes from the entity the request
// went to (RFC 6120 §8.1.2.1); a request without `to` went to our own
// account, whose answer may carry no from, our bare JID or our domain.
func (c *Client) fromMatches(from, to string) bool {
	if from == to {
		return true
	}
	if to != "" {
		f, err1 := ParseJID(from)
		t, err2 := ParseJID(to)
		return err1 == nil && err2 == nil && f == t
	}
	f, err := ParseJID(from)
	return err == nil && (f == c.jid.Bare() || f == c.jid || f == JID{Domain: c.domain})
}

// newID returns a random stanza ID.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
