package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/microbot/microbot/input"
)

// Name is the name of this input in the input table (--inputs=slack).
const Name = "slack"

// Limits of a reply.
const (
	// PartSize is the most bytes of reply text in one message: far under
	// Slack's 40,000 characters even once escaped, and short enough to read.
	PartSize = 3500
	// MaxParts is the most messages one reply is split into; a longer reply
	// is uploaded as a file.
	MaxParts = 12
	// MaxSlashParts is the same for a slash command answered through its
	// response_url, which Slack accepts at most 5 times.
	MaxSlashParts = 5
	// FileThreshold is the size in bytes past which a reply is uploaded as
	// a file rather than split.
	FileThreshold = 40 * 1024
)

// Input is the Slack input. Build it with [New] and open connections with
// Stream. It is safe for concurrent use.
type Input struct {
	opts options
	log  *slog.Logger

	mu       sync.Mutex
	api      *slackapi.Client
	http     *http.Client
	appToken string
	debug    bool
	names    input.Names // of the Config's fields, for messages
	self     *selfInfo

	cur atomic.Pointer[conn] // the latest connection, for Connected

	seen      *ttlCache[string, struct{}] // deliveries already handled
	users     *ttlCache[string, string]   // user id -> display name ("" = unknown)
	responses *ttlCache[string, string]   // slash command key -> response_url
	lanes     lanes                       // per-channel order of replies
}

// selfInfo is who the bot is, from auth.test.
type selfInfo struct {
	userID, botID, name string
}

// Option adjusts an Input.
type Option func(*options)

type options struct {
	logger         *slog.Logger
	httpTimeout    time.Duration
	connectTimeout time.Duration
	pingTimeout    time.Duration
	rateLimitWait  time.Duration
	dedupTTL       time.Duration
	userTTL        time.Duration
	claimer        Claimer
	claimTimeout   time.Duration
}

// Claimer shares the record of the deliveries handled with the other
// instances of the bot connected to the same Slack app (Slack spreads an
// app's events over all its Socket Mode connections, and may send a retry
// to another connection than the first delivery's). cmd/microbot
// implements it with Consul.
type Claimer interface {
	// Claim records that the delivery known by keys is handled, and reports
	// whether this is the first claim of any of them, by any instance.
	Claim(ctx context.Context, keys []string) (bool, error)
}

// WithClaimer makes every delivery the input hands to the bot claimed with
// c first (after this process's own record): one another instance claimed
// already is acknowledged and dropped. If c fails (or takes longer than 2
// s), the delivery is handled anyway and a warning is logged: a reply
// twice is better than none.
func WithClaimer(c Claimer) Option { return func(o *options) { o.claimer = c } }

// WithLogger sends the input's logs to l (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPTimeout bounds every Web API call, response_url post and upload
// (default 30 s).
func WithHTTPTimeout(d time.Duration) Option { return func(o *options) { o.httpTimeout = d } }

// WithConnectTimeout bounds how long Stream waits for the socket to open
// (default 30 s).
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connectTimeout = d } }

// WithPingTimeout is how long the socket may go without a ping from Slack
// before it counts as dropped (default 30 s; Slack pings every few seconds).
func WithPingTimeout(d time.Duration) Option { return func(o *options) { o.pingTimeout = d } }

// WithRateLimitWait bounds the total time one reply waits out rate limits
// (HTTP 429 Retry-After) before Send gives up (default 2 min).
func WithRateLimitWait(d time.Duration) Option { return func(o *options) { o.rateLimitWait = d } }

// Config is the Slack input's configuration: its two tokens and where the
// Web API is.
type Config struct {
	// AppToken is the app-level token (xapp-…, scope connections:write)
	// that opens the Socket Mode connection.
	AppToken string
	// BotToken is the bot token (xoxb-…) for the Web API.
	BotToken string
	// APIURL is the Web API's base URL: a Slack-compatible proxy or a test
	// server; empty: Slack's own.
	APIURL string
	// Debug logs the Socket Mode traffic at debug level (credentials
	// redacted, message text included).
	Debug bool
	// Names names the fields in error messages.
	Names input.Names
}

// New returns a Slack input. It checks the tokens and the API URL and makes
// no network call; a missing or malformed token is an error naming the
// field, never showing the token.
func New(cfg Config, opts ...Option) (*Input, error) {
	o := options{
		httpTimeout:    30 * time.Second,
		connectTimeout: 30 * time.Second,
		pingTimeout:    30 * time.Second,
		rateLimitWait:  2 * time.Minute,
		dedupTTL:       30 * time.Minute, // Slack retries for up to ~6 minutes
		userTTL:        time.Hour,
		claimTimeout:   2 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	in := &Input{
		opts:      o,
		log:       o.logger.With("input", Name),
		seen:      newTTLCache[string, struct{}](10000),
		users:     newTTLCache[string, string](2000),
		responses: newTTLCache[string, string](1000),
	}
	if err := in.configure(cfg); err != nil {
		return nil, err
	}
	return in, nil
}

// String returns "slack".
func (in *Input) String() string { return Name }

func (in *Input) configure(cfg Config) error {
	appToken, botToken := strings.TrimSpace(cfg.AppToken), strings.TrimSpace(cfg.BotToken)
	if err := checkToken(appToken, "xapp-", "app-level token",
		cfg.Names.Of("AppToken"), "the app's xapp-… token with the connections:write scope (Basic Information → App-Level Tokens)"); err != nil {
		return err
	}
	if err := checkToken(botToken, "xoxb-", "bot token",
		cfg.Names.Of("BotToken"), "the xoxb-… Bot User OAuth Token (OAuth & Permissions)"); err != nil {
		return err
	}
	apiOpts := []slackapi.Option{slackapi.OptionAppLevelToken(appToken)}
	if apiURL := strings.TrimSpace(cfg.APIURL); apiURL != "" {
		u, err := url.Parse(apiURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("slack: %s must be an absolute http(s) URL such as %s", cfg.Names.Of("APIURL"), slackapi.APIURL)
		}
		if !strings.HasSuffix(apiURL, "/") {
			apiURL += "/"
		}
		apiOpts = append(apiOpts, slackapi.OptionAPIURL(apiURL))
	}
	hc := &http.Client{Timeout: in.opts.httpTimeout}
	apiOpts = append(apiOpts, slackapi.OptionHTTPClient(hc), slackapi.OptionLog(logWriter{in.log}))

	in.api = slackapi.New(botToken, apiOpts...)
	in.http = hc
	in.appToken = appToken
	in.debug = cfg.Debug
	in.names = cfg.Names
	return nil
}

// tokenKinds names Slack's token prefixes, to say what a wrong token is.
var tokenKinds = []struct{ prefix, kind string }{
	{"xapp-", "an app-level token (xapp-…)"},
	{"xoxb-", "a bot token (xoxb-…)"},
	{"xoxp-", "a user token (xoxp-…)"},
	{"xoxe", "a token-rotation token (xoxe…)"},
	{"xoxa-", "a workspace app token (xoxa-…)"},
	{"xoxr-", "a refresh token (xoxr-…)"},
	{"xoxs-", "a session token (xoxs-…)"},
	{"xoxc-", "a browser session token (xoxc-…)"},
}

// checkToken says what is wrong with token, which should be a want… token,
// without ever quoting it.
func checkToken(token, want, what, where, hint string) error {
	if token == "" {
		return fmt.Errorf("slack: no %s: set %s to %s", what, where, hint)
	}
	if !strings.HasPrefix(token, want) {
		for _, k := range tokenKinds {
			if strings.HasPrefix(token, k.prefix) {
				return fmt.Errorf("slack: %s holds %s, not a %s: it needs %s", where, k.kind, what, hint)
			}
		}
		return fmt.Errorf("slack: %s is not a Slack %s (those start with %q): it needs %s", where, what, want, hint)
	}
	rest := token[len(want):]
	if len(rest) < 6 || strings.IndexFunc(rest, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
	}) >= 0 {
		return fmt.Errorf("slack: %s is malformed: a %s is %q followed by letters, digits and dashes (was it cut or pasted with extra characters?)", where, what, want)
	}
	return nil
}

// Connected reports whether the Socket Mode connection is up right now.
func (in *Input) Connected() bool {
	c := in.cur.Load()
	return c != nil && c.connected.Load()
}

// Stream checks the bot token (auth.test, once), opens a Socket Mode
// connection and returns it when the socket is up. It fails, rather than
// retrying, when the socket cannot be opened: the caller retries with
// backoff. When Slack refuses a token (revoked, invalid, inactive account,
// wrong type or scope) the error wraps input.ErrPermanent.
func (in *Input) Stream(ctx context.Context) (input.Conn, error) {
	in.mu.Lock()
	api := in.api
	in.mu.Unlock()
	if api == nil {
		return nil, errors.New("slack: Stream called before Init")
	}
	if _, err := in.whoAmI(ctx); err != nil {
		return nil, err
	}
	c := in.open(api)
	timer := time.NewTimer(in.opts.connectTimeout)
	defer timer.Stop()
	select {
	case <-c.ready:
		in.log.Info("connected to Slack over Socket Mode")
		return c, nil
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		_ = c.Close()
		return nil, fmt.Errorf("slack: opening the Socket Mode connection: %w", ctx.Err())
	case <-timer.C:
		_ = c.Close()
		return nil, fmt.Errorf("slack: the Socket Mode connection did not open within %s", in.opts.connectTimeout)
	}
}

// whoAmI returns the bot's identity, asking auth.test the first time.
func (in *Input) whoAmI(ctx context.Context) (*selfInfo, error) {
	in.mu.Lock()
	self, api := in.self, in.api
	in.mu.Unlock()
	if self != nil {
		return self, nil
	}
	ctx, cancel := context.WithTimeout(ctx, in.opts.httpTimeout)
	defer cancel()
	res, err := api.AuthTestContext(ctx)
	if err != nil {
		if se, ok := errors.AsType[slackapi.SlackErrorResponse](err); ok {
			if tokenRefused(se.Err) {
				return nil, fmt.Errorf("slack: Slack rejected the bot token (auth.test: %s): check %s: %w: %w", se.Err, in.names.Of("BotToken"), input.ErrPermanent, err)
			}
			return nil, fmt.Errorf("slack: auth.test failed (%s): %w", se.Err, err)
		}
		return nil, fmt.Errorf("slack: auth.test: %w", err)
	}
	self = &selfInfo{userID: res.UserID, botID: res.BotID, name: res.User}
	in.mu.Lock()
	in.self = self
	in.mu.Unlock()
	return self, nil
}

// tokenRefused reports whether a Web API error code (of auth.test or
// apps.connections.open) means Slack refuses the token itself, so that
// retrying with it cannot help: errors for those wrap input.ErrPermanent.
func tokenRefused(code string) bool {
	switch code {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked",
		"token_expired", "not_allowed_token_type", "missing_scope":
		return true
	}
	return false
}

// logWriter hands slack-go's debug lines to slog at debug level.
type logWriter struct{ l *slog.Logger }

// Output implements slack-go's logger.
func (w logWriter) Output(_ int, s string) error {
	w.l.Debug(strings.TrimSpace(s))
	return nil
}

var (
	_ input.Input          = (*Input)(nil)
	_ input.StatusReporter = (*Input)(nil)
	_ input.Poster         = (*Input)(nil)
)
