// Package slacktestws is a fake Slack for tests of Socket Mode apps, built
// on slack-go's own slacktest server: its RTM endpoint /ws is replaced by a
// Socket Mode endpoint that speaks envelopes (hello, events_api,
// slash_commands, disconnect), pings like Slack and records every ack; and
// the Web API methods such an app calls are served and recorded:
// apps.connections.open, auth.test, users.info, chat.postMessage (text and
// attachments), chat.update, the files.uploadV2 flow
// (files.getUploadURLExternal, the upload, files.completeUploadExternal)
// and slash-command response URLs.
// Tokens are checked like Slack does (and can be revoked), and HTTP 429
// rate limits can be injected.
//
// It is importable from any test (it is not internal):
//
//	srv := slacktestws.New()
//	defer srv.Close()
//	// in process: slack.New(srv.BotToken, slack.OptionAppLevelToken(srv.AppToken),
//	//                       slack.OptionAPIURL(srv.APIURL()))
//	// a binary:   microbot --inputs=slack --slack_api_url=<srv.APIURL()>
//	//                      --slack_app_token=<srv.AppToken> --slack_bot_token=<srv.BotToken>
//	srv.WaitConnections(ctx, 1)
//	d, _ := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1",
//		Text: "<@" + srv.BotUserID + "> list services"})
//	posts, _ := srv.WaitPosts(ctx, 1) // the answer, with ThreadTS == d.TS
//
// An app may open several Socket Mode connections, as instances of a bot
// run side by side do: deliveries go to the newest connection, to the one
// a Message names (Connection, numbered from 1 in the order opened; see
// LiveConnections), or in turn WithRoundRobin, as Slack spreads an app's
// events; a retry by Slack (the same EventID and TS, RetryAttempt > 0) can
// be sent to another connection than the first delivery's.
//
// Everything listens on 127.0.0.1 only. Methods are safe for concurrent use;
// the Wait methods poll nothing: they wake on every change the server sees.
package slacktestws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// Defaults of a new Server.
const (
	DefaultAppToken  = "xapp-1-A0TESTAPP-1-slacktestws"
	DefaultBotToken  = "xoxb-1-slacktestws-bot"
	DefaultBotUserID = "UBOT0TEST"
	DefaultBotName   = "microbot"
	DefaultBotID     = "B0TESTBOT"
	DefaultTeamID    = "T0TEST"
	DefaultAppID     = "A0TESTAPP"
	// MaxTextLength is the most characters chat.postMessage accepts in
	// text (Slack's limit); longer gets msg_too_long.
	MaxTextLength = 40000
)

// Method names for RateLimit and Calls that are not Web API methods.
const (
	MethodResponseURL = "response_url" // posts to a slash command's response URL
	MethodUpload      = "upload"       // the upload step of files.uploadV2
)

// Server is the fake Slack. Its exported fields are read-only after New.
type Server struct {
	// AppToken is the app-level token apps.connections.open accepts.
	AppToken string
	// BotToken is the bot token the other Web API methods accept.
	BotToken string
	// BotUserID, BotName and BotID are who auth.test says the bot is.
	BotUserID, BotName, BotID string
	// TeamID is the workspace of every event.
	TeamID string

	st           *slacktest.Server
	pingInterval time.Duration
	roundRobin   bool

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change
	closed      bool
	seq         int
	users       map[string]string // id -> display name
	userLookups map[string]int
	sockets     []*socket // live
	opened      int
	turn        int // round robin: deliveries so far
	acks        []Ack
	posts       []Post
	updates     []Update
	files       []File
	uploads     map[string]*upload // file id -> upload
	limits      map[string][]time.Duration
	calls       map[string][]Call
	responses   map[string]string // response URL path -> channel
	outside     map[string]bool   // channels the bot is not a member of
	revoked     map[string]string // token -> the error Slack answers it
}

// Option configures a Server.
type Option func(*Server)

// WithTokens sets the tokens the server accepts.
func WithTokens(appToken, botToken string) Option {
	return func(s *Server) { s.AppToken, s.BotToken = appToken, botToken }
}

// WithBotUser sets the bot's user id and name (auth.test, users.info).
func WithBotUser(id, name string) Option {
	return func(s *Server) { s.BotUserID, s.BotName = id, name }
}

// WithUser adds a person users.info knows (display name name).
func WithUser(id, name string) Option { return func(s *Server) { s.users[id] = name } }

// WithPingInterval sets how often the Socket Mode endpoint pings each
// connection (default 2 s; Slack's clients expect one at least every 30 s).
func WithPingInterval(d time.Duration) Option { return func(s *Server) { s.pingInterval = d } }

// WithRoundRobin spreads the deliveries not sent to a given connection over
// the live connections in turn, as Slack spreads an app's events over all
// its Socket Mode connections (by default they go to the newest).
func WithRoundRobin() Option { return func(s *Server) { s.roundRobin = true } }

// New starts a fake Slack on 127.0.0.1. Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		AppToken:     DefaultAppToken,
		BotToken:     DefaultBotToken,
		BotUserID:    DefaultBotUserID,
		BotName:      DefaultBotName,
		BotID:        DefaultBotID,
		TeamID:       DefaultTeamID,
		pingInterval: 2 * time.Second,
		changed:      make(chan struct{}),
		users:        map[string]string{},
		userLookups:  map[string]int{},
		uploads:      map[string]*upload{},
		limits:       map[string][]time.Duration{},
		calls:        map[string][]Call{},
		responses:    map[string]string{},
		outside:      map[string]bool{},
		revoked:      map[string]string{},
	}
	for _, o := range opts {
		o(s)
	}
	s.users[s.BotUserID] = s.BotName
	s.st = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/ws", slacktest.Websocket(s.serveSocket))
		c.Handle("/apps.connections.open", s.appsConnectionsOpen)
		c.Handle("/auth.test", s.api("auth.test", s.authTest))
		c.Handle("/users.info", s.api("users.info", s.usersInfo))
		c.Handle("/chat.postMessage", s.api("chat.postMessage", s.postMessage))
		c.Handle("/chat.update", s.api("chat.update", s.updateMessage))
		c.Handle("/files.getUploadURLExternal", s.api("files.getUploadURLExternal", s.getUploadURL))
		c.Handle("/files.completeUploadExternal", s.api("files.completeUploadExternal", s.completeUpload))
		c.Handle("/upload/", s.upload)
		c.Handle("/response/", s.responseURL)
	})
	s.st.Start()
	return s
}

// Close drops every socket and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.DropConnections()
	s.st.Stop()
}

// APIURL is the Web API base URL ("http://127.0.0.1:port/"), for
// slack.OptionAPIURL or microbot's --slack_api_url.
func (s *Server) APIURL() string { return s.st.GetAPIURL() }

// AddUser adds (or renames) a person users.info knows.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// NotInChannel makes the bot a non-member of channel: chat.postMessage and
// files.completeUploadExternal there answer not_in_channel, as Slack does.
// (Slash command response URLs still work: they need no membership.)
func (s *Server) NotInChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outside[channel] = true
}

// RevokeToken makes every method answer the error code ("token_revoked",
// "account_inactive", "invalid_auth" …) to token from now on, as Slack does
// once a token is revoked or its app uninstalled; code "" accepts it again.
func (s *Server) RevokeToken(token, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == "" {
		delete(s.revoked, token)
		return
	}
	s.revoked[token] = code
}

// revocation is the error code token gets, "" if it is not revoked.
func (s *Server) revocation(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked[token]
}

func (s *Server) isOutside(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outside[channel]
}

// UserLookups is how many times users.info was asked about id.
func (s *Server) UserLookups(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userLookups[id]
}

// WaitFor waits until cond holds, re-checking it whenever the server sees
// something (a connection, an ack, a call). cond may call the Server's
// methods.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slacktestws: waiting: %w", ctx.Err())
		}
	}
}

// changedLocked wakes the waiters. s.mu is held.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) nextLocked() int {
	s.seq++
	return s.seq
}

// ---- Socket Mode ----

type socket struct {
	ws   *websocket.Conn
	n    int // 1 for the first connection ever opened, …
	wmu  sync.Mutex
	done chan struct{}
}

func (k *socket) write(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	k.wmu.Lock()
	defer k.wmu.Unlock()
	_ = k.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return k.ws.WriteMessage(websocket.TextMessage, data)
}

// Ack is an acknowledgement the app sent for an envelope.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // the response payload, if any
	Connection int             // which connection (1, 2, …) carried it
}

func (s *Server) serveSocket(ws *websocket.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.opened++
	k := &socket{ws: ws, n: s.opened, done: make(chan struct{})}
	s.sockets = append(s.sockets, k)
	live := len(s.sockets)
	s.mu.Unlock()
	defer func() {
		close(k.done)
		s.mu.Lock()
		for i, o := range s.sockets {
			if o == k {
				s.sockets = append(s.sockets[:i], s.sockets[i+1:]...)
				break
			}
		}
		s.changedLocked()
		s.mu.Unlock()
	}()

	if err := k.write(map[string]any{
		"type":            "hello",
		"num_connections": live,
		"debug_info":      map[string]any{"host": "slacktestws", "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": DefaultAppID},
	}); err != nil {
		return
	}
	// Announce the socket only once hello is out, so an envelope sent next
	// arrives after it, as with Slack.
	s.mu.Lock()
	s.changedLocked()
	s.mu.Unlock()

	go func() {
		t := time.NewTicker(s.pingInterval)
		defer t.Stop()
		for {
			select {
			case <-k.done:
				return
			case <-t.C:
				if ws.WriteControl(websocket.PingMessage, []byte("slacktestws"), time.Now().Add(5*time.Second)) != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &a) != nil || a.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		s.acks = append(s.acks, Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, Connection: k.n})
		s.changedLocked()
		s.mu.Unlock()
	}
}

// Connections is how many Socket Mode connections were opened so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// Live is how many Socket Mode connections are open now.
func (s *Server) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// LiveConnections returns the numbers (1 for the first opened since New, …)
// of the connections open now, in the order they were opened.
func (s *Server) LiveConnections() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, len(s.sockets))
	for i, k := range s.sockets {
		out[i] = k.n
	}
	return out
}

// WaitConnections waits until the n-th connection (counting from 1 since
// New) is open and has been sent its hello.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	return s.WaitFor(ctx, func() bool { return s.newest(n) != nil })
}

// pick returns the live socket numbered conn, or for conn 0 the newest (or
// the next in turn, WithRoundRobin); nil if there is none.
func (s *Server) pick(conn int) *socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sockets) == 0 {
		return nil
	}
	if conn > 0 {
		for _, k := range s.sockets {
			if k.n == conn {
				return k
			}
		}
		return nil
	}
	if s.roundRobin {
		s.turn++
		return s.sockets[s.turn%len(s.sockets)]
	}
	return s.sockets[len(s.sockets)-1]
}

// newest returns the most recent live socket if it is the n-th or later.
func (s *Server) newest(n int) *socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sockets) == 0 {
		return nil
	}
	k := s.sockets[len(s.sockets)-1]
	if k.n < n {
		return nil
	}
	return k
}

// SendEnvelope sends a Socket Mode envelope of type typ ("events_api",
// "slash_commands", "interactive") with payload on the newest connection
// (or the next in turn, WithRoundRobin), waiting for one if none is open.
// It returns the envelope id the app must ack.
func (s *Server) SendEnvelope(ctx context.Context, typ string, payload any, retryAttempt int) (string, error) {
	id, _, err := s.SendEnvelopeOn(ctx, 0, typ, payload, retryAttempt)
	return id, err
}

// SendEnvelopeOn is SendEnvelope on the connection numbered conn (see
// LiveConnections), waiting for it to be open; conn 0 is SendEnvelope's
// choice. It returns the envelope id and the connection it went on.
func (s *Server) SendEnvelopeOn(ctx context.Context, conn int, typ string, payload any, retryAttempt int) (string, int, error) {
	var k *socket
	if err := s.WaitFor(ctx, func() bool { k = s.pick(conn); return k != nil }); err != nil {
		if conn > 0 {
			return "", 0, fmt.Errorf("slacktestws: Socket Mode connection %d is not open: %w", conn, err)
		}
		return "", 0, fmt.Errorf("slacktestws: no Socket Mode connection to send on: %w", err)
	}
	s.mu.Lock()
	id := fmt.Sprintf("%08x-0000-4000-8000-slacktestws", s.nextLocked())
	s.mu.Unlock()
	env := map[string]any{
		"envelope_id":              id,
		"type":                     typ,
		"payload":                  payload,
		"accepts_response_payload": typ != "events_api",
		"retry_attempt":            retryAttempt,
		"retry_reason":             "",
	}
	if retryAttempt > 0 {
		env["retry_reason"] = "timeout"
	}
	if err := k.write(env); err != nil {
		return "", 0, fmt.Errorf("slacktestws: writing envelope: %w", err)
	}
	return id, k.n, nil
}

// Message is a message as Slack describes it in an event.
type Message struct {
	Channel  string // "C…" a channel; "D…" a direct conversation
	User     string // who wrote it
	Text     string // as Slack sends it: escaped, with <@U…> mentions
	TS       string // its timestamp; one is made up if empty
	ThreadTS string // the thread it is in, if any
	BotID    string // set for a bot's message
	SubType  string // "bot_message", "message_changed" …
	// EventID of the delivery; one is made up if empty. Send the same
	// EventID again (with RetryAttempt > 0) to play a retry by Slack.
	EventID      string
	RetryAttempt int
	// Connection is the Socket Mode connection to deliver on (numbered from
	// 1 in the order opened, see LiveConnections); 0: the newest, or the
	// next in turn WithRoundRobin. A retry by Slack may come on another
	// connection than the first delivery.
	Connection int
}

// Delivery tells what was sent.
type Delivery struct {
	EnvelopeID string
	EventID    string
	TS         string // the message's timestamp
	Connection int    // the connection it went on
}

// Mention delivers an app_mention event for m.
func (s *Server) Mention(ctx context.Context, m Message) (Delivery, error) {
	return s.sendMessage(ctx, "app_mention", "", m)
}

// DirectMessage delivers a message event of channel_type "im" for m (the
// message.im subscription).
func (s *Server) DirectMessage(ctx context.Context, m Message) (Delivery, error) {
	return s.sendMessage(ctx, "message", "im", m)
}

// ChannelMessage delivers a message event of channel_type "channel" (the
// message.channels subscription).
func (s *Server) ChannelMessage(ctx context.Context, m Message) (Delivery, error) {
	return s.sendMessage(ctx, "message", "channel", m)
}

func (s *Server) sendMessage(ctx context.Context, typ, channelType string, m Message) (Delivery, error) {
	if m.TS == "" {
		m.TS = s.NewTS()
	}
	ev := map[string]any{
		"type":     typ,
		"channel":  m.Channel,
		"user":     m.User,
		"text":     m.Text,
		"ts":       m.TS,
		"event_ts": m.TS,
		"team":     s.TeamID,
	}
	if m.User == "" {
		delete(ev, "user")
	}
	if channelType != "" {
		ev["channel_type"] = channelType
	}
	if m.ThreadTS != "" {
		ev["thread_ts"] = m.ThreadTS
	}
	if m.BotID != "" {
		ev["bot_id"] = m.BotID
	}
	if m.SubType != "" {
		ev["subtype"] = m.SubType
	}
	d, err := s.EventOn(ctx, m.Connection, ev, m.EventID, m.RetryAttempt)
	d.TS = m.TS
	return d, err
}

// Event delivers any Events API event (the inner "event" object) in an
// events_api envelope. eventID is made up if empty.
func (s *Server) Event(ctx context.Context, event map[string]any, eventID string, retryAttempt int) (Delivery, error) {
	return s.EventOn(ctx, 0, event, eventID, retryAttempt)
}

// EventOn is Event on the connection numbered conn (0: Event's choice).
func (s *Server) EventOn(ctx context.Context, conn int, event map[string]any, eventID string, retryAttempt int) (Delivery, error) {
	if eventID == "" {
		s.mu.Lock()
		eventID = fmt.Sprintf("Ev%08d", s.nextLocked())
		s.mu.Unlock()
	}
	payload := map[string]any{
		"token":      "verification-token-unused",
		"team_id":    s.TeamID,
		"api_app_id": DefaultAppID,
		"event":      event,
		"type":       "event_callback",
		"event_id":   eventID,
		"event_time": time.Now().Unix(),
		"authorizations": []map[string]any{{
			"team_id": s.TeamID, "user_id": s.BotUserID, "is_bot": true,
		}},
	}
	id, n, err := s.SendEnvelopeOn(ctx, conn, "events_api", payload, retryAttempt)
	return Delivery{EnvelopeID: id, EventID: eventID, Connection: n}, err
}

// SlashCommand is a slash command a person typed.
type SlashCommand struct {
	Command     string // "/micro" if empty
	Text        string // what follows the command
	Channel     string // channel id ("C…", "D…")
	ChannelName string // "general", or "directmessage"
	User        string
	UserName    string
	// ResponseURL is made up (served by this server, recorded as posts
	// with Method "response_url") if empty.
	ResponseURL string
	// Connection is the connection to deliver on, as Message's.
	Connection int
}

// SlashCommand delivers a slash_commands envelope.
func (s *Server) SlashCommand(ctx context.Context, c SlashCommand) (Delivery, error) {
	if c.Command == "" {
		c.Command = "/micro"
	}
	if c.ResponseURL == "" {
		c.ResponseURL = s.NewResponseURL(c.Channel)
	}
	s.mu.Lock()
	trigger := fmt.Sprintf("%d.trigger", s.nextLocked())
	s.mu.Unlock()
	id, n, err := s.SendEnvelopeOn(ctx, c.Connection, "slash_commands", map[string]any{
		"token":        "verification-token-unused",
		"team_id":      s.TeamID,
		"team_domain":  "slacktestws",
		"channel_id":   c.Channel,
		"channel_name": c.ChannelName,
		"user_id":      c.User,
		"user_name":    c.UserName,
		"command":      c.Command,
		"text":         c.Text,
		"api_app_id":   DefaultAppID,
		"response_url": c.ResponseURL,
		"trigger_id":   trigger,
	}, 0)
	return Delivery{EnvelopeID: id, Connection: n}, err
}

// NewResponseURL returns a fresh response URL for a slash command in
// channel; posts to it are recorded with Method "response_url".
func (s *Server) NewResponseURL(channel string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := fmt.Sprintf("/response/%s/%d", s.TeamID, s.nextLocked())
	s.responses[path] = channel
	return strings.TrimSuffix(s.st.GetAPIURL(), "/") + path
}

// Disconnect sends a "disconnect" envelope (reason "refresh_requested",
// "warning", "link_disabled" …) on every open connection, as Slack does
// before it closes one. The sockets stay open until the app closes them.
func (s *Server) Disconnect(reason string) error {
	s.mu.Lock()
	socks := append([]*socket(nil), s.sockets...)
	s.mu.Unlock()
	if len(socks) == 0 {
		return errors.New("slacktestws: no Socket Mode connection to disconnect")
	}
	var errs []error
	for _, k := range socks {
		errs = append(errs, k.write(map[string]any{
			"type":       "disconnect",
			"reason":     reason,
			"debug_info": map[string]any{"host": "slacktestws"},
		}))
	}
	return errors.Join(errs...)
}

// DropConnections closes every open socket abruptly (no close frame), as a
// network failure would, and returns how many it closed.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	socks := append([]*socket(nil), s.sockets...)
	s.mu.Unlock()
	for _, k := range socks {
		_ = k.ws.NetConn().Close()
	}
	return len(socks)
}

// Acks returns the acks received so far, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// Acked reports how many times the envelope was acked.
func (s *Server) Acked(envelopeID string) int {
	n := 0
	for _, a := range s.Acks() {
		if a.EnvelopeID == envelopeID {
			n++
		}
	}
	return n
}

// WaitAck waits until the envelope is acked.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) error {
	return s.WaitFor(ctx, func() bool { return s.Acked(envelopeID) > 0 })
}

// NewTS makes up a new message timestamp, later than every earlier one.
func (s *Server) NewTS() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tsLocked()
}

func (s *Server) tsLocked() string {
	n := s.nextLocked()
	return fmt.Sprintf("%d.%06d", 1700000000+n/1000000, n%1000000)
}

// ---- Web API ----

// Call is one call of a method, as the server saw it.
type Call struct {
	At     time.Time
	Status int // HTTP status answered (429 when rate limited)
}

// Calls returns the calls of a method ("chat.postMessage", "response_url",
// …) so far, rate-limited ones included.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls[method]...)
}

// RateLimit makes the next n calls of method answer HTTP 429 with a
// Retry-After of retryAfter (rounded up to whole seconds, as Slack sends).
func (s *Server) RateLimit(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.limits[method] = append(s.limits[method], retryAfter)
	}
}

// admit records a call and answers 429 if a rate limit is pending for it.
func (s *Server) admit(method string, w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changedLocked()
	if q := s.limits[method]; len(q) > 0 {
		s.limits[method] = q[1:]
		s.calls[method] = append(s.calls[method], Call{At: time.Now(), Status: http.StatusTooManyRequests})
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(q[0].Seconds()))))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
		return false
	}
	s.calls[method] = append(s.calls[method], Call{At: time.Now(), Status: http.StatusOK})
	return true
}

// api wraps a Web API method that wants the bot token: it parses the form,
// applies rate limits and checks the token.
func (s *Server) api(method string, h func(r *http.Request) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !s.admit(method, w) {
			return
		}
		var res any
		switch tok := token(r); {
		case tok == "":
			res = fail("not_authed")
		case s.revocation(tok) != "":
			res = fail(s.revocation(tok))
		case tok == s.AppToken:
			res = fail("not_allowed_token_type")
		case tok != s.BotToken:
			res = fail("invalid_auth")
		default:
			res = h(r)
		}
		writeJSON(w, res)
	}
}

func parseForm(r *http.Request) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		return r.ParseMultipartForm(64 << 20)
	}
	return r.ParseForm()
}

// token is the token of a request: the Authorization header or the form.
func token(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return r.FormValue("token")
}

func fail(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) appsConnectionsOpen(w http.ResponseWriter, r *http.Request) {
	if !s.admit("apps.connections.open", w) {
		return
	}
	switch tok := token(r); {
	case tok == "":
		writeJSON(w, fail("not_authed"))
	case s.revocation(tok) != "":
		writeJSON(w, fail(s.revocation(tok)))
	case tok == s.BotToken:
		writeJSON(w, fail("not_allowed_token_type"))
	case tok != s.AppToken:
		writeJSON(w, fail("invalid_auth"))
	default:
		s.mu.Lock()
		ticket := s.nextLocked()
		s.mu.Unlock()
		writeJSON(w, map[string]any{"ok": true, "url": fmt.Sprintf("%s?ticket=%d", s.st.GetWSURL(), ticket)})
	}
}

func (s *Server) authTest(*http.Request) any {
	return map[string]any{
		"ok": true, "url": "https://slacktestws.slack.com/", "team": "slacktestws",
		"user": s.BotName, "team_id": s.TeamID, "user_id": s.BotUserID, "bot_id": s.BotID,
	}
}

func (s *Server) usersInfo(r *http.Request) any {
	id := r.FormValue("user")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLookups[id]++
	name, ok := s.users[id]
	if !ok {
		return fail("user_not_found")
	}
	return map[string]any{"ok": true, "user": map[string]any{
		"id": id, "team_id": s.TeamID, "name": strings.ToLower(strings.ReplaceAll(name, " ", ".")),
		"real_name": name, "is_bot": id == s.BotUserID,
		"profile": map[string]any{"display_name": name, "real_name": name},
	}}
}

// Post is a message the app posted: with chat.postMessage, or to a slash
// command's response URL.
type Post struct {
	Method       string // "chat.postMessage" or "response_url"
	Channel      string
	ThreadTS     string
	Text         string             // as sent, Slack escapes included; the latest text if it was edited
	Attachments  []slack.Attachment // as sent (chat.postMessage), Slack escapes included
	TS           string             // the timestamp the server gave it (chat.postMessage)
	Edits        int                // how many times chat.update changed it
	ResponseType string             // "in_channel" or "ephemeral" (response_url)
	At           time.Time
}

func (s *Server) postMessage(r *http.Request) any {
	channel, text := r.FormValue("channel"), r.FormValue("text")
	switch {
	case channel == "":
		return fail("channel_not_found")
	case text == "" && r.FormValue("blocks") == "" && r.FormValue("attachments") == "":
		return fail("no_text")
	case utf8.RuneCountInString(text) > MaxTextLength:
		return fail("msg_too_long")
	case s.isOutside(channel):
		return fail("not_in_channel")
	}
	var atts []slack.Attachment
	if a := r.FormValue("attachments"); a != "" {
		if err := json.Unmarshal([]byte(a), &atts); err != nil {
			return fail("invalid_attachments")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changedLocked()
	p := Post{Method: "chat.postMessage", Channel: channel, ThreadTS: r.FormValue("thread_ts"), Text: text, Attachments: atts, TS: s.tsLocked(), At: time.Now()}
	s.posts = append(s.posts, p)
	return map[string]any{"ok": true, "channel": channel, "ts": p.TS,
		"message": map[string]any{"type": "message", "text": text, "ts": p.TS, "thread_ts": p.ThreadTS, "bot_id": s.BotID, "user": s.BotUserID}}
}

func (s *Server) responseURL(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	channel, ok := s.responses[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "no such response URL", http.StatusNotFound)
		return
	}
	if !s.admit(MethodResponseURL, w) {
		return
	}
	var msg struct {
		Text         string `json:"text"`
		ResponseType string `json:"response_type"`
		ThreadTS     string `json:"thread_ts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if msg.Text == "" {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.posts = append(s.posts, Post{Method: MethodResponseURL, Channel: channel, ThreadTS: msg.ThreadTS, Text: msg.Text, ResponseType: msg.ResponseType, At: time.Now()})
	s.changedLocked()
	s.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true})
}

// Posts returns the messages posted so far, in order.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// PostCount is how many messages were posted so far.
func (s *Server) PostCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.posts)
}

// WaitPosts waits until at least n messages were posted and returns them
// all.
func (s *Server) WaitPosts(ctx context.Context, n int) ([]Post, error) {
	var posts []Post
	err := s.WaitFor(ctx, func() bool { posts = s.Posts(); return len(posts) >= n })
	return posts, err
}

// File is a file the app uploaded and shared (files.uploadV2).
type File struct {
	ID             string
	Filename       string
	Title          string
	Channel        string
	ThreadTS       string
	InitialComment string
	Content        []byte
}

type upload struct {
	filename string
	length   int
	content  []byte
	done     bool
}

func (s *Server) getUploadURL(r *http.Request) any {
	name := r.FormValue("filename")
	length, err := strconv.Atoi(r.FormValue("length"))
	if name == "" || err != nil || length <= 0 {
		return fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("F%08d", s.nextLocked())
	s.uploads[id] = &upload{filename: name, length: length}
	return map[string]any{"ok": true, "file_id": id, "upload_url": s.st.GetAPIURL() + "upload/" + id}
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.admit(MethodUpload, w) {
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	var content []byte
	if f, _, err := r.FormFile("file"); err == nil {
		content, err = io.ReadAll(f)
		_ = f.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		http.Error(w, "no file field", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	switch {
	case !ok:
		http.Error(w, "unknown upload", http.StatusNotFound)
	case len(content) != u.length:
		http.Error(w, fmt.Sprintf("got %d bytes, %d announced", len(content), u.length), http.StatusBadRequest)
	default:
		u.content = content
		_, _ = fmt.Fprintf(w, "OK - %d", len(content))
	}
}

func (s *Server) completeUpload(r *http.Request) any {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(r.FormValue("files")), &files); err != nil || len(files) == 0 {
		return fail("invalid_arguments")
	}
	if ch := r.FormValue("channel_id"); ch != "" && s.isOutside(ch) {
		return fail("not_in_channel")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changedLocked()
	var out []map[string]any
	for _, f := range files {
		u, ok := s.uploads[f.ID]
		if !ok || u.content == nil || u.done {
			return fail("file_not_found")
		}
	}
	for _, f := range files {
		u := s.uploads[f.ID]
		u.done = true
		s.files = append(s.files, File{
			ID: f.ID, Filename: u.filename, Title: f.Title, Channel: r.FormValue("channel_id"),
			ThreadTS: r.FormValue("thread_ts"), InitialComment: r.FormValue("initial_comment"), Content: u.content,
		})
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	return map[string]any{"ok": true, "files": out}
}

// Files returns the files shared so far, in order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]File(nil), s.files...)
}

// WaitFiles waits until at least n files were shared and returns them all.
func (s *Server) WaitFiles(ctx context.Context, n int) ([]File, error) {
	var files []File
	err := s.WaitFor(ctx, func() bool { files = s.Files(); return len(files) >= n })
	return files, err
}
