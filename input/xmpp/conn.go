package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/backoff"
)

// Keys of Event.Meta this input sets, to reply to the right address.
const (
	// MetaTo is the JID a reply goes to: the room, or the sender's full JID.
	MetaTo = "xmpp.to"
	// MetaType is the reply's message type: "groupchat" or "chat".
	MetaType = "xmpp.type"
)

// conn is one open XMPP input: a supervisor goroutine (run) holds the
// current client, reads its stanzas, turns messages into events and
// reconnects when the stream breaks. Room state is touched by run only.
type conn struct {
	in     *Input
	cfg    *settings
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	events chan *input.Event
	done   chan struct{} // run ended

	mu      sync.Mutex
	cl      *xmppclient.Client // nil while reconnecting
	changed chan struct{}      // closed and replaced whenever cl changes
	err     error              // why run ended, if not Close
	report  func(up bool, err error)

	rooms map[xmppclient.JID]*room
	again bool // serving a client after the first (run only)
}

// room is the state of one configured room on the current stream.
type room struct {
	jid      xmppclient.JID
	nick     string // the nick asked for (or given by the room)
	attempt  int    // nick conflicts so far
	joined   bool
	joinedAt time.Time
	// rejoinAt is when to join again after a removal that was no kick or
	// ban (zero: not planned); rejoins counts such removals in a row.
	rejoinAt time.Time
	rejoins  backoff.Backoff
	// occupants maps each occupant's nick to its real bare JID, or "" when
	// the room does not reveal it (semi-anonymous rooms).
	occupants map[string]string
}

func newConn(in *Input) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		in:      in,
		cfg:     in.cfg,
		log:     in.log,
		ctx:     ctx,
		cancel:  cancel,
		events:  make(chan *input.Event, 64),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		rooms:   map[xmppclient.JID]*room{},
	}
	for _, r := range in.cfg.rooms {
		c.rooms[r] = &room{jid: r}
	}
	return c
}

// dial opens one client; errors that retrying cannot fix wrap ErrPermanent.
func (c *conn) dial(ctx context.Context) (*xmppclient.Client, error) {
	cl, err := xmppclient.Dial(ctx, c.cfg.jid, c.cfg.password, c.cfg.clientOpts...)
	if err != nil {
		return nil, classify(err)
	}
	return cl, nil
}

func (c *conn) start(cl *xmppclient.Client) { go c.run(cl) }

// run serves one client after another until Close or a permanent error.
func (c *conn) run(cl *xmppclient.Client) {
	defer close(c.done)
	// Counts the reconnect attempts since the last stable connection.
	bo := backoff.Backoff{Min: c.in.opts.backoffMin, Max: c.in.opts.backoffMax}
	for {
		opened := time.Now()
		err := c.serve(cl)
		c.setClient(nil)
		_ = cl.Close()
		if c.ctx.Err() != nil {
			return
		}
		if time.Since(opened) >= c.in.opts.stableAfter {
			bo.Reset()
		}
		var se *xmppclient.StreamError
		if errors.As(err, &se) && se.Condition == "conflict" {
			c.log.Warn("xmpp: another connection logged in as " + c.cfg.jid.String() + " with the same resource; is a second bot running?")
		}
		c.log.Warn("xmpp: connection lost; reconnecting", "err", err)
		c.again = true
		c.observe(false, err)
		for {
			if !backoff.Sleep(c.ctx, bo.Next()) {
				return
			}
			cl, err = c.dial(c.ctx)
			if err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrPermanent) {
				c.log.Error("xmpp: cannot reconnect; giving up", "err", err)
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			c.log.Warn("xmpp: reconnecting failed", "err", err, "attempt", bo.Failures())
			c.observe(false, err)
		}
	}
}

// readyTimeout bounds the wait for the server to reflect our presence
// before the connection counts as up anyway.
const readyTimeout = 5 * time.Second

// serve joins the rooms, announces the bot and handles stanzas until the
// stream ends. The connection counts as up (Connected, and Send may use
// it) once the server has reflected our initial presence, which it sends
// after it has processed the joins before it; messages to the bot's bare
// JID are routed to it from then on.
func (c *conn) serve(cl *xmppclient.Client) error {
	ctx := c.ctx
	for _, r := range c.rooms {
		*r = room{jid: r.jid, nick: c.cfg.nick, occupants: map[string]string{},
			rejoins: backoff.Backoff{Min: c.in.opts.backoffMin, Max: c.in.opts.backoffMax}}
		if err := c.join(ctx, cl, r); err != nil {
			return err
		}
	}
	if err := cl.Send(ctx, &xmppclient.Presence{}); err != nil {
		return err
	}
	ready := false
	readyBy := time.Now().Add(readyTimeout)
	up := func() {
		ready = true
		c.setClient(cl)
		c.log.Info("xmpp: connected", "jid", cl.JID().String(), "mechanism", cl.Mechanism(), "tls", cl.Encrypted(), "rooms", len(c.rooms))
		if c.again {
			c.observe(true, nil)
		}
	}
	for {
		// Wait for a stanza, or until the connection counts as up anyway,
		// or a room is to be joined again.
		var wake time.Time
		if !ready {
			wake = readyBy
		}
		for _, r := range c.rooms {
			if !r.rejoinAt.IsZero() && (wake.IsZero() || r.rejoinAt.Before(wake)) {
				wake = r.rejoinAt
			}
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if !wake.IsZero() {
			rctx, cancel = context.WithDeadline(ctx, wake)
		}
		s, err := cl.Recv(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				if !ready && !time.Now().Before(readyBy) {
					up()
				}
				if err := c.rejoin(ctx, cl); err != nil {
					return err
				}
				continue
			}
			return err
		}
		switch s := s.(type) {
		case *xmppclient.Presence:
			if !ready && s.From == cl.JID().String() && s.Type == xmppclient.PresenceAvailable {
				up()
				continue
			}
			c.presence(ctx, cl, s)
		case *xmppclient.Message:
			ev := c.event(s)
			if ev == nil {
				continue
			}
			select {
			case c.events <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// rejoin joins again the rooms whose time has come.
func (c *conn) rejoin(ctx context.Context, cl *xmppclient.Client) error {
	now := time.Now()
	for _, r := range c.rooms {
		if r.rejoinAt.IsZero() || r.rejoinAt.After(now) {
			continue
		}
		r.rejoinAt = time.Time{}
		c.log.Info("xmpp: joining room again", "room", r.jid.String(), "nick", r.nick)
		if err := c.join(ctx, cl, r); err != nil {
			return err
		}
	}
	return nil
}

// join enters a room with no history (XEP-0045 §7.2).
func (c *conn) join(ctx context.Context, cl *xmppclient.Client, r *room) error {
	return cl.Send(ctx, &xmppclient.Presence{
		To:  r.jid.WithResource(r.nick).String(),
		MUC: &xmppclient.MUC{History: &xmppclient.MUCHistory{MaxStanzas: "0"}},
	})
}

// presence tracks our joins and the occupants of our rooms.
func (c *conn) presence(ctx context.Context, cl *xmppclient.Client, p *xmppclient.Presence) {
	from, err := xmppclient.ParseJID(p.From)
	if err != nil || from.Resource == "" {
		return
	}
	r := c.rooms[from.Bare()]
	if r == nil {
		return
	}
	nick := from.Resource
	log := c.log.With("room", r.jid.String())
	var item xmppclient.MUCItem
	if p.MUCUser != nil && len(p.MUCUser.Items) > 0 {
		item = p.MUCUser.Items[0]
	}
	self := p.MUCUser.HasStatus(xmppclient.StatusSelf) || nick == r.nick
	switch {
	case p.Type == xmppclient.PresenceError:
		if nick != r.nick {
			return
		}
		cond := "unknown"
		if p.Error != nil {
			cond = p.Error.Condition
		}
		if cond == xmppclient.ConditionConflict && r.attempt < c.in.opts.joinNicks {
			r.attempt++
			r.nick = fmt.Sprintf("%s_%d", c.cfg.nick, r.attempt+1)
			log.Info("xmpp: nick taken in room; trying another", "nick", r.nick)
			if err := c.join(ctx, cl, r); err != nil {
				log.Warn("xmpp: joining room failed", "err", err)
			}
			return
		}
		r.joined = false
		log.Error("xmpp: cannot join room", "nick", nick, "condition", cond)
	case self && p.Type == xmppclient.PresenceUnavailable:
		if p.MUCUser.HasStatus(xmppclient.StatusNewNick) && item.Nick != "" {
			r.nick = item.Nick
			return
		}
		wasJoined := r.joined
		r.joined = false
		kicked, banned := p.MUCUser.HasStatus(xmppclient.StatusKicked), p.MUCUser.HasStatus(xmppclient.StatusBanned)
		if kicked || banned || p.MUCUser.HasStatus(xmppclient.StatusAffiliation) || p.MUCUser.HasStatus(xmppclient.StatusMembersOnly) {
			// The room's admins decided it: stay out until the next
			// connection.
			log.Warn("xmpp: removed from room by its admins; it is joined again on the next connection",
				"kicked", kicked, "banned", banned, "statuses", statuses(p.MUCUser))
			return
		}
		// Not a decision of the room's: typically the server ending an
		// old session of ours (replaced by this one) after this one
		// joined, or the room's service restarting. Join again, with
		// backoff should it keep happening.
		if wasJoined && time.Since(r.joinedAt) >= c.in.opts.stableAfter {
			r.rejoins.Reset()
		}
		d := r.rejoins.Next()
		r.rejoinAt = time.Now().Add(d)
		log.Warn("xmpp: removed from room, not by a kick or a ban; joining it again",
			"in", d.Round(time.Millisecond), "statuses", statuses(p.MUCUser))
	case self:
		r.nick = nick            // the room may have changed it (status 210)
		r.rejoinAt = time.Time{} // in: no need to join again
		if !r.joined {
			r.joined, r.joinedAt = true, time.Now()
			log.Info("xmpp: joined room", "nick", nick)
		}
		if p.MUCUser.HasStatus(xmppclient.StatusCreated) {
			c.unlock(ctx, cl, r)
		}
	case p.Type == xmppclient.PresenceUnavailable:
		if p.MUCUser.HasStatus(xmppclient.StatusNewNick) && item.Nick != "" {
			r.occupants[item.Nick] = r.occupants[nick]
		}
		delete(r.occupants, nick)
	case p.Type == xmppclient.PresenceAvailable:
		real := ""
		if j, err := xmppclient.ParseJID(item.JID); err == nil && item.JID != "" {
			real = j.Bare().String()
		}
		r.occupants[nick] = real
	}
}

// statuses returns the status codes of u, for the log.
func statuses(u *xmppclient.MUCUser) []string {
	if u == nil {
		return nil
	}
	out := make([]string, 0, len(u.Statuses))
	for _, s := range u.Statuses {
		out = append(out, s.Code)
	}
	return out
}

// unlock accepts the default configuration of a room we created, which a
// server may keep locked until then (XEP-0045 §10.1.2, instant room).
func (c *conn) unlock(ctx context.Context, cl *xmppclient.Client, r *room) {
	iq := &xmppclient.IQ{Type: xmppclient.IQSet, ID: "instant-room", To: r.jid.String(),
		Payload: &xmppclient.Element{XMLName: xml.Name{Space: xmppclient.NSMUCOwner, Local: "query"},
			Children: []xmppclient.Element{{XMLName: xml.Name{Space: xmppclient.NSXData, Local: "x"},
				Attrs: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "submit"}}}}}}
	if err := cl.Send(ctx, iq); err != nil {
		c.log.Warn("xmpp: unlocking new room failed", "room", r.jid.String(), "err", err)
	}
}

// event turns a message into an Event, or nil when it is not for the bot:
// errors, history and other late deliveries, empty bodies, our own echoes,
// rooms we are not in, and automated (headline) messages.
func (c *conn) event(m *xmppclient.Message) *input.Event {
	if m.Type == xmppclient.MessageError {
		if m.Error != nil {
			c.log.Debug("xmpp: message bounced", "from", m.From, "condition", m.Error.Condition)
		}
		return nil
	}
	if m.Type == xmppclient.MessageHeadline || m.Delayed() || strings.TrimSpace(m.Body) == "" {
		return nil
	}
	from, err := xmppclient.ParseJID(m.From)
	if err != nil || from.Bare() == c.cfg.jid.Bare() {
		return nil
	}
	// Events say "xmpp" under --inputs=hipchat too: one input, one
	// identity for the policy, the audit log and the services.
	ev := &input.Event{Input: Name, Thread: m.Thread}
	if r := c.rooms[from.Bare()]; r != nil {
		nick := from.Resource
		if nick == "" { // the room itself
			return nil
		}
		ev.UserName = nick
		ev.UserID = r.occupants[nick]
		if ev.UserID == "" {
			// The room hides real JIDs: the occupant's address in the room
			// is all there is, and nicks can change hands.
			ev.UserID = from.String()
		}
		if ev.UserID == c.cfg.jid.Bare().String() {
			return nil
		}
		if m.Type == xmppclient.MessageGroupchat {
			if nick == r.nick {
				return nil // our own message, reflected
			}
			ev.Room = r.jid.String()
			ev.Text, ev.Addressed = addressed(m.Body, c.cfg.nick, r.nick)
			ev.Meta = map[string]string{MetaTo: r.jid.String(), MetaType: xmppclient.MessageGroupchat}
			return ev
		}
		// A private message from an occupant.
		ev.Room, ev.Direct, ev.Addressed = from.String(), true, true
		ev.Text, _ = addressed(m.Body, c.cfg.nick, r.nick)
		ev.Meta = map[string]string{MetaTo: from.String(), MetaType: xmppclient.MessageChat}
		return ev
	}
	if m.Type == xmppclient.MessageGroupchat {
		return nil // a room we are not in
	}
	ev.UserID, ev.UserName = from.Bare().String(), from.Local
	ev.Room, ev.Direct, ev.Addressed = from.Bare().String(), true, true
	ev.Text, _ = addressed(m.Body, c.cfg.nick, c.cfg.jid.Local)
	ev.Meta = map[string]string{MetaTo: from.String(), MetaType: xmppclient.MessageChat}
	return ev
}

// ReportConnection sets the function told about the reconnections this
// connection makes by itself, which Recv never shows (the bot passes them
// on to its input hook, see bot.Reconnector): report(false, err) when the
// stream breaks or a reconnection attempt fails, report(true, nil) when
// the stream is up again. A permanent failure is not reported: it ends
// Recv.
func (c *conn) ReportConnection(report func(up bool, err error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report = report
}

func (c *conn) observe(up bool, err error) {
	c.mu.Lock()
	report := c.report
	c.mu.Unlock()
	if report != nil {
		report(up, err)
	}
}

// setClient makes cl the current client (nil while reconnecting).
func (c *conn) setClient(cl *xmppclient.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cl = cl
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *conn) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cl != nil
}

// client waits for a current client other than avoid (a client that just
// failed), for as long as ctx allows.
func (c *conn) client(ctx context.Context, avoid *xmppclient.Client) (*xmppclient.Client, error) {
	for {
		c.mu.Lock()
		cl, changed := c.cl, c.changed
		c.mu.Unlock()
		if cl != nil && cl != avoid {
			return cl, nil
		}
		select {
		case <-changed:
		case <-c.done:
			return nil, c.endErr()
		case <-ctx.Done():
			return nil, fmt.Errorf("xmpp: not connected: %w", ctx.Err())
		}
	}
}

// endErr is what Recv and Send return once run has ended.
func (c *conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return fmt.Errorf("xmpp: %w", input.ErrClosed)
}

// Recv returns the next message for the bot (and room messages that are
// not addressed to it, with Addressed false). It fails only after Close, or
// when reconnecting met an error that retrying cannot fix (ErrPermanent).
func (c *conn) Recv(ctx context.Context) (*input.Event, error) {
	select {
	case ev := <-c.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-c.events:
		return ev, nil
	case <-c.done:
		return nil, c.endErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Send replies in the room (groupchat) or to the sender (chat). A long reply
// is split at line boundaries into messages of at most MaxBodySize; a Code
// reply is fenced as an XEP-0393 preformatted block. While the connection
// is down, Send waits for it (as long as ctx allows), and a message whose
// write failed because the stream broke is sent again, once, on the next
// connection.
func (c *conn) Send(ctx context.Context, to *input.Event, reply *input.Reply) error {
	addr, typ := to.Meta[MetaTo], to.Meta[MetaType]
	if addr == "" {
		addr, typ = to.Room, xmppclient.MessageGroupchat
		if to.Direct {
			typ = xmppclient.MessageChat
		}
	}
	j, err := xmppclient.ParseJID(addr)
	if err != nil {
		return fmt.Errorf("xmpp: reply address: %w", err)
	}
	if typ != xmppclient.MessageChat && typ != xmppclient.MessageGroupchat {
		typ = xmppclient.MessageChat
	}
	for _, body := range bodies(strings.TrimRight(reply.Text, "\n"), reply.Format == input.Code) {
		msg := &xmppclient.Message{To: j.String(), Type: typ, Body: body, Thread: to.Thread}
		if err := c.send(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// bodies splits text into message bodies of at most MaxBodySize on the
// wire, at line boundaries where it can; each part of a code text is
// fenced as an XEP-0393 preformatted block. Blank parts are left out.
func bodies(text string, code bool) []string {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	limit := MaxBodySize
	if code {
		limit -= 2 * escapedLen(codeFence+"\n")
	}
	var out []string
	for _, part := range split(text, limit) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if code {
			part = codeFence + "\n" + part + "\n" + codeFence
		}
		out = append(out, part)
	}
	return out
}

// Post posts p as plain text with its severity marker (input.PlainText):
// to a room of the input's (type groupchat) when p.Room is one, otherwise
// to the person p.Room names (type chat). A post longer than one message
// is split as replies are: the marker and title, the text in parts (a
// Code text fenced), then the fields, link and source. XMPP rooms have no
// threads here: p.Thread is ignored and Posted is empty. While the
// connection is down, Post waits for it as Send does, as long as ctx
// allows; before the first Stream, or after Close, it fails with an error
// wrapping input.ErrNotConnected.
func (in *Input) Post(ctx context.Context, p *input.Post) (input.Posted, error) {
	c := in.cur.Load()
	if c == nil {
		return input.Posted{}, fmt.Errorf("xmpp: post to %s: %w", p.Room, input.ErrNotConnected)
	}
	j, err := xmppclient.ParseJID(p.Room)
	if err != nil {
		return input.Posted{}, fmt.Errorf("xmpp: post: room %q: %w", p.Room, err)
	}
	typ := xmppclient.MessageChat
	if j.Resource == "" && slices.Contains(in.cfg.rooms, j) {
		typ = xmppclient.MessageGroupchat
	}
	code := p.Format == input.Code
	msgs := []string{input.PlainText(p, codeFence)}
	if escapedLen(msgs[0]) > MaxBodySize {
		head, body, tail := input.PlainParts(p)
		msgs = append(append(bodies(head, false), bodies(body, code)...), bodies(tail, false)...)
	}
	for _, body := range msgs {
		if err := c.send(ctx, &xmppclient.Message{To: j.String(), Type: typ, Body: body}); err != nil {
			return input.Posted{}, err
		}
	}
	return input.Posted{}, nil
}

func (c *conn) send(ctx context.Context, msg *xmppclient.Message) error {
	var failed *xmppclient.Client
	for attempt := 0; ; attempt++ {
		cl, err := c.client(ctx, failed)
		if err != nil {
			return err
		}
		err = cl.Send(ctx, msg)
		if err == nil {
			return nil
		}
		if attempt > 0 || ctx.Err() != nil || errors.Is(err, xmppclient.ErrStanzaTooLargeToSend) {
			return fmt.Errorf("xmpp: sending to %s: %w", msg.To, err)
		}
		c.log.Warn("xmpp: sending failed; retrying on the next connection", "to", msg.To, "err", err)
		failed = cl
	}
}

// Close leaves the server and stops reconnecting; Recv then returns
// input.ErrClosed.
func (c *conn) Close() error {
	c.cancel()
	<-c.done
	c.in.cur.CompareAndSwap(c, nil)
	return nil
}
