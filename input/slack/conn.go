package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/microbot/microbot/input"
)

// ErrConnectionLost is returned (wrapped) by Recv when the Socket Mode
// connection ended: Slack asked to reconnect, the socket dropped, or Slack
// stopped pinging. The bot opens a new one with Stream.
var ErrConnectionLost = errors.New("slack: Socket Mode connection lost")

// Kinds of events, in Event.Meta["kind"].
const (
	KindMention = "mention"
	KindDirect  = "dm"
	KindSlash   = "slash"
)

// Keys of Event.Meta.
const (
	MetaKind  = "kind"  // KindMention, KindDirect or KindSlash
	MetaTS    = "ts"    // the message's timestamp (its id in the channel)
	MetaSlash = "slash" // for a slash command, the key of its response_url
)

// conn is one Socket Mode connection.
type conn struct {
	in     *Input
	smc    *socketmode.Client
	ctx    context.Context // ends with the socket, or at Close
	cancel context.CancelFunc

	queue     chan pending  // received, not yet acked nor returned by Recv; closed by pump
	ready     chan struct{} // closed once the socket is up
	done      chan struct{} // closed when pump ends; err is set before
	closed    chan struct{} // closed by Close
	err       error
	connected atomic.Bool
	dialed    atomic.Bool
	closeOnce sync.Once
	readyOnce sync.Once
}

// pending is a message for the bot, filtered and deduplicated; Recv turns
// it into an Event.
type pending struct {
	kind        string
	user        string
	userName    string // from the slash command payload, if any
	channel     string
	text        string
	ts          string
	thread      string
	direct      bool
	responseKey string

	envelope string   // the envelope to ack when Recv hands it to the bot
	keys     []string // dedup keys of the delivery (see Input.claim)
}

// open starts a Socket Mode client for one connection.
func (in *Input) open(api *slackapi.Client) *conn {
	in.mu.Lock()
	debug := in.debug
	in.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		in:     in,
		ctx:    ctx,
		cancel: cancel,
		queue:  make(chan pending, 64),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
	c.smc = socketmode.New(api,
		socketmode.OptionPingInterval(in.opts.pingTimeout),
		socketmode.OptionDialer(&websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			NetDialContext:   c.dial,
			HandshakeTimeout: in.opts.connectTimeout,
			WriteBufferSize:  32 * 1024,
		}),
		socketmode.OptionReadLimit(8<<20),
		socketmode.OptionDebug(debug),
		socketmode.OptionLog(logWriter{in.log}),
	)
	in.cur.Store(c)
	runErr := make(chan error, 1)
	go func() { runErr <- c.smc.RunContext(ctx) }()
	go c.pump(ctx, runErr)
	return c
}

// dial opens the one TCP connection of this Conn. socketmode would dial
// again after the socket ends (its own reconnect loop); the bot reconnects
// instead, with its backoff, so a second dial is refused, and the end of
// the socket stops socketmode at once (see socketConn.Close).
func (c *conn) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.dialed.Swap(true) {
		return nil, errors.New("slack: this connection is over; the bot reconnects")
	}
	d := &net.Dialer{Timeout: c.in.opts.connectTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &socketConn{Conn: nc, c: c}, nil
}

// socketConn is the socket's TCP connection; closing it (socketmode does
// when the socket drops, Slack sends "disconnect" or pings stop) ends the
// Conn before socketmode can try to reconnect.
type socketConn struct {
	net.Conn
	c *conn
}

// Close closes the connection and, once the socket was up, ends the Conn.
func (s *socketConn) Close() error {
	if s.c.connected.Load() {
		s.c.cancel()
	}
	return s.Conn.Close()
}

// pump reads socketmode's events until the connection ends: it filters
// them, acks at once the envelopes with nothing for the bot, and queues the
// messages for Recv, which acks them as it hands them over.
func (c *conn) pump(ctx context.Context, runErr <-chan error) {
	defer close(c.done)
	defer close(c.queue)
	defer c.connected.Store(false)
	defer c.cancel()
	var err error
	for err == nil {
		select {
		case <-ctx.Done():
			err = errSocketEnded
		case e := <-runErr:
			if err = errSocketEnded; ctx.Err() == nil {
				err = classifyRunError(e, c.in.names)
			}
		case evt := <-c.smc.Events:
			err = c.handle(ctx, evt)
		}
	}
	// Envelopes read before the end still reach the bot (their acks cannot
	// go out any more: Slack sends them again, and the repeat is dropped as
	// a duplicate).
	for {
		select {
		case evt := <-c.smc.Events:
			_ = c.handle(ctx, evt)
			continue
		default:
		}
		break
	}
	select {
	case <-c.closed:
		err = fmt.Errorf("slack: %w", input.ErrClosed)
	default:
		c.in.log.Warn("Socket Mode connection ended", "err", err)
	}
	c.err = err
}

// errSocketEnded is why a Conn ends when its socket does.
var errSocketEnded = fmt.Errorf("%w: Slack asked to reconnect, the socket dropped or Slack stopped pinging", ErrConnectionLost)

// classifyRunError explains why socketmode's Run ended. Slack refusing the
// app-level token is permanent (it wraps input.ErrPermanent).
func classifyRunError(err error, names input.Names) error {
	if se, ok := errors.AsType[slackapi.SlackErrorResponse](err); ok {
		if tokenRefused(se.Err) {
			return fmt.Errorf("slack: Slack refused to open the socket (apps.connections.open: %s): check %s, an xapp-… token with connections:write: %w: %w",
				se.Err, names.Of("AppToken"), input.ErrPermanent, err)
		}
		return fmt.Errorf("slack: Slack refused to open the socket (apps.connections.open: %s): %w", se.Err, err)
	}
	if sc, ok := errors.AsType[slackapi.StatusCodeError](err); ok && sc.Code == http.StatusNotFound {
		return fmt.Errorf("slack: apps.connections.open is not served at the API URL (HTTP 404): %w", err)
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}

// handle deals with one socketmode event; a non-nil error ends the
// connection.
func (c *conn) handle(ctx context.Context, evt socketmode.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.in.log.Error("panic while handling a Slack event; event dropped", "type", evt.Type, "panic", fmt.Sprint(r))
			err = nil
		}
	}()
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		if ce, ok := evt.Data.(*slackapi.ConnectingEvent); ok && ce.ConnectionCount > 0 {
			// socketmode is about to reconnect: the socket ended. The bot
			// reconnects, with its backoff.
			return errSocketEnded
		}
	case socketmode.EventTypeConnectionError:
		err := errors.New("unknown error")
		if ce, ok := evt.Data.(*slackapi.ConnectionErrorEvent); ok && ce.ErrorObj != nil {
			err = ce.ErrorObj
		}
		return classifyRunError(err, c.in.names)
	case socketmode.EventTypeInvalidAuth:
		// socketmode says so when apps.connections.open answers HTTP 404,
		// then its Run returns that error, which classifyRunError explains.
		c.in.log.Debug("Socket Mode: apps.connections.open not found")
	case socketmode.EventTypeConnected:
		c.connected.Store(true)
		c.readyOnce.Do(func() { close(c.ready) })
	case socketmode.EventTypeHello:
		c.in.log.Debug("Socket Mode hello")
	case socketmode.EventTypeEventsAPI:
		var p *pending
		if ea, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			p = c.in.fromEventsAPI(ea)
		}
		c.offer(ctx, evt.Request, p)
	case socketmode.EventTypeSlashCommand:
		var p *pending
		if cmd, ok := evt.Data.(slackapi.SlashCommand); ok {
			p = c.in.fromSlashCommand(cmd, envelopeID(evt.Request))
		}
		c.offer(ctx, evt.Request, p)
	case socketmode.EventTypeInteractive:
		c.ack(ctx, evt.Request)
	case socketmode.EventTypeErrorBadMessage:
		// An envelope socketmode could not parse (e.g. an event type it does
		// not know): still ack it, or Slack sends it again and again.
		if bm, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var env struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if json.Unmarshal(bm.Message, &env) == nil && env.EnvelopeID != "" {
				c.ack(ctx, &socketmode.Request{EnvelopeID: env.EnvelopeID})
			}
			c.in.log.Warn("unreadable Socket Mode message", "err", bm.Cause)
		}
	case socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeIncomingError:
		c.in.log.Debug("Socket Mode I/O error", "type", evt.Type, "data", fmt.Sprint(evt.Data))
	}
	return nil
}

// offer queues p for Recv, which acks req's envelope when it hands p to
// the bot. An envelope with nothing for the bot (p nil), or repeating a
// delivery the bot already has, is acked at once.
//
// So an envelope is acked only once the bot has taken its message: one
// that arrives after the bot stopped reading (it is shutting down) stays
// unacked when the connection closes, and Slack delivers it again, to the
// next connection.
func (c *conn) offer(ctx context.Context, req *socketmode.Request, p *pending) {
	if p != nil && envelopeID(req) != "" {
		p.envelope = req.EnvelopeID
		p.keys = append([]string{"envelope:" + req.EnvelopeID}, p.keys...)
	}
	if p != nil && c.in.handled(p.keys) {
		c.in.log.Debug("repeated delivery ignored", "envelope_id", p.envelope)
		p = nil
	}
	if p == nil {
		c.ack(ctx, req)
		return
	}
	select {
	case c.queue <- *p:
	case <-c.closed: // not acked: Slack sends it again
	}
}

// envelopeID is req's envelope id, "" if none.
func envelopeID(req *socketmode.Request) string {
	if req == nil {
		return ""
	}
	return req.EnvelopeID
}

// ack acknowledges an envelope. Once the connection is over it cannot: it
// says nothing then (Slack sends the envelope again, and the repeat is
// acked, as a duplicate, on the next connection).
func (c *conn) ack(ctx context.Context, req *socketmode.Request) {
	if req == nil || req.EnvelopeID == "" || ctx.Err() != nil {
		return
	}
	if err := c.smc.AckCtx(ctx, req.EnvelopeID, nil); err != nil && ctx.Err() == nil {
		c.in.log.Warn("ack failed", "envelope_id", req.EnvelopeID, "err", err)
	}
}

// Recv returns the next message for the bot, and acks its envelope: an
// envelope is acked when its message is handed to the bot. When the
// connection has ended it returns the messages already received, then an
// error wrapping ErrConnectionLost (or input.ErrClosed after Close: the
// messages received but not returned then are left unacked, for Slack to
// send again).
func (c *conn) Recv(ctx context.Context) (*input.Event, error) {
	for {
		select {
		case <-c.closed:
			return nil, fmt.Errorf("slack: %w", input.ErrClosed)
		default:
		}
		select {
		case p, ok := <-c.queue:
			if !ok {
				<-c.done
				return nil, c.err
			}
			c.ack(c.ctx, &socketmode.Request{EnvelopeID: p.envelope})
			if !c.in.claim(p.keys) {
				// A repeat of a delivery handed over since it was queued.
				c.in.log.Debug("repeated delivery ignored", "envelope_id", p.envelope)
				continue
			}
			if !c.in.claimShared(ctx, p.keys) {
				c.in.log.Debug("repeated delivery ignored: another instance has it", "envelope_id", p.envelope)
				continue
			}
			ev, err := c.in.toEvent(ctx, p)
			if err != nil {
				continue // logged; one bad message does not end the connection
			}
			return ev, nil
		case <-c.closed:
			return nil, fmt.Errorf("slack: %w", input.ErrClosed)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Send delivers reply to the channel and thread of to (see the package
// documentation for how).
func (c *conn) Send(ctx context.Context, to *input.Event, reply *input.Reply) error {
	select {
	case <-c.closed:
		return fmt.Errorf("slack: %w", input.ErrClosed)
	default:
	}
	return c.in.send(ctx, to, reply)
}

// Close ends the connection and unblocks Recv.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.cancel()
		c.connected.Store(false)
	})
	<-c.done
	return nil
}

// Connected reports whether this connection's socket is up.
func (c *conn) Connected() bool { return c.connected.Load() }

// handled reports whether a delivery sharing one of keys was handed to the
// bot already. The keys of a delivery are its envelope id, its event id
// (Slack repeats an event with the same one) and its message (channel and
// timestamp: one message can come as two events, app_mention and
// message.im): it is handed to the bot only if none of them was.
func (in *Input) handled(keys []string) bool {
	for _, k := range keys {
		if _, ok := in.seen.get(k); ok {
			return true
		}
	}
	return false
}

// claim records that the delivery with keys is handed to the bot; false if
// one of them was already (a repeat, not to be handled twice).
func (in *Input) claim(keys []string) bool {
	for _, k := range keys {
		if !in.seen.add(k, struct{}{}, in.opts.dedupTTL) {
			return false
		}
	}
	return true
}

// claimShared claims the delivery with keys among the instances of the
// bot (WithClaimer); false if another instance claimed it first. Without a
// Claimer, or if it fails, the delivery is this instance's.
func (in *Input) claimShared(ctx context.Context, keys []string) bool {
	if in.opts.claimer == nil || len(keys) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, in.opts.claimTimeout)
	defer cancel()
	ok, err := in.opts.claimer.Claim(ctx, keys)
	if err != nil {
		in.log.Warn("claiming a delivery among the instances failed; handling it here (another instance may too)", "err", err)
		return true
	}
	return ok
}

// fromEventsAPI picks what the bot must see from an Events API envelope:
// app mentions and direct messages from people, with the keys that tell
// repeats (see claim).
func (in *Input) fromEventsAPI(ea slackevents.EventsAPIEvent) *pending {
	if ea.Type != slackevents.CallbackEvent {
		if ea.Type == slackevents.AppRateLimited {
			in.log.Warn("Slack is dropping events for this app: it exceeded the Events API rate limit")
		}
		return nil
	}
	in.mu.Lock()
	self := in.self
	in.mu.Unlock()
	var p *pending
	switch ev := ea.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		if ev.Edited != nil || ev.BotID != "" || ev.User == "" || isSelf(self, ev.User) {
			return nil
		}
		p = &pending{kind: KindMention, user: ev.User, channel: ev.Channel, text: ev.Text, ts: ev.TimeStamp, thread: ev.ThreadTimeStamp}
		if isDirectChannel(ev.Channel) {
			p.kind, p.direct = KindDirect, true
		} else if p.thread == "" {
			p.thread = ev.TimeStamp // start a thread under the mention
		}
	case *slackevents.MessageEvent:
		if ev.ChannelType != "im" || !personSubtype(ev.SubType) || ev.BotID != "" || ev.User == "" || isSelf(self, ev.User) {
			return nil
		}
		p = &pending{kind: KindDirect, user: ev.User, channel: ev.Channel, text: ev.Text, ts: ev.TimeStamp, thread: ev.ThreadTimeStamp, direct: true}
	default:
		return nil
	}
	if cb, ok := ea.Data.(*slackevents.EventsAPICallbackEvent); ok && cb.EventID != "" {
		p.keys = append(p.keys, "event:"+cb.EventID)
	}
	if p.ts != "" {
		p.keys = append(p.keys, "message:"+p.channel+":"+p.ts)
	}
	return p
}

// fromSlashCommand turns a slash command into a message for the bot.
func (in *Input) fromSlashCommand(cmd slackapi.SlashCommand, envelopeID string) *pending {
	in.mu.Lock()
	self := in.self
	in.mu.Unlock()
	if cmd.UserID == "" || isSelf(self, cmd.UserID) {
		return nil
	}
	p := &pending{
		kind:     KindSlash,
		user:     cmd.UserID,
		userName: cmd.UserName,
		channel:  cmd.ChannelID,
		text:     cmd.Text,
		direct:   isDirectChannel(cmd.ChannelID) || cmd.ChannelName == "directmessage",
	}
	if cmd.ResponseURL != "" {
		p.responseKey = envelopeID
		if p.responseKey == "" {
			p.responseKey = cmd.TriggerID
		}
		// Slack accepts a response_url for 30 minutes.
		in.responses.put(p.responseKey, cmd.ResponseURL, 30*time.Minute)
	}
	return p
}

// toEvent makes the Event for a pending message, resolving names.
func (in *Input) toEvent(ctx context.Context, p pending) (ev *input.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			in.log.Error("panic while reading a Slack message", "panic", fmt.Sprint(r))
			ev, err = nil, fmt.Errorf("slack: reading a message from %s in %s failed: %v", p.user, p.channel, r)
		}
	}()
	in.mu.Lock()
	self := in.self
	in.mu.Unlock()
	text := p.text
	if p.kind != KindSlash && self != nil {
		text, _ = stripMention(text, self.userID)
	}
	names := func(id string) string { return in.userName(ctx, id) }
	ev = &input.Event{
		Input:     Name,
		UserID:    p.user,
		UserName:  in.userName(ctx, p.user),
		Room:      p.channel,
		Thread:    p.thread,
		Direct:    p.direct,
		Addressed: true,
		Text:      strings.TrimSpace(decodeText(text, names)),
		Meta:      map[string]string{MetaKind: p.kind, MetaTS: p.ts},
	}
	if ev.UserName == "" {
		ev.UserName = p.userName
	}
	if ev.UserName == "" {
		ev.UserName = p.user
	}
	if p.responseKey != "" {
		ev.Meta[MetaSlash] = p.responseKey
	}
	return ev, nil
}

// userName returns the display name of a user, from users.info through a
// cache; "" if Slack cannot tell.
func (in *Input) userName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	if n, ok := in.users.get(id); ok {
		return n
	}
	in.mu.Lock()
	api := in.api
	in.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, in.opts.httpTimeout)
	defer cancel()
	u, err := api.GetUserInfoContext(ctx, id)
	if err != nil {
		in.log.Debug("users.info failed", "user", id, "err", err)
		// Remember the failure briefly, not to ask again for every message.
		in.users.put(id, "", time.Minute)
		return ""
	}
	name := u.Profile.DisplayName
	if name == "" {
		name = u.RealName
	}
	if name == "" {
		name = u.Name
	}
	in.users.put(id, name, in.opts.userTTL)
	return name
}

func isSelf(self *selfInfo, user string) bool { return self != nil && user == self.userID }

// isDirectChannel reports whether a conversation id is a direct message.
func isDirectChannel(id string) bool { return strings.HasPrefix(id, "D") }

// personSubtype reports whether a message subtype is a person's new
// message (edits, deletions, joins, bot messages … are not).
func personSubtype(subtype string) bool {
	switch subtype {
	case "", "file_share", "thread_broadcast", "me_message":
		return true
	}
	return false
}
