package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/input/slack/slacktestws"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/prosodytest"
	"github.com/microbot/microbot/internal/testenv"
)

// These tests run several real microbot processes with --ha against a real
// Consul cluster (three servers, consultest) and a real prosody or the fake
// Slack (input/slack/slacktestws), kill them with SIGKILL or cut them off
// from Consul, and count the answers.

// haWait bounds the waits of these tests: generous, for a loaded machine
// (a takeover takes about 6 s with the defaults).
const haWait = 90 * time.Second

// haWorld is a Consul cluster the instances coordinate through.
type haWorld struct {
	t  testing.TB
	cl *consultest.Cluster
	n  int // instances started
}

func newHAWorld(t testing.TB) *haWorld {
	t.Helper()
	cl := consultest.StartCluster(t, 3) // first: without Consul, fail (CI) or skip before building anything
	build(t)
	return &haWorld{t: t, cl: cl}
}

// haBot is one instance.
type haBot struct {
	*proc
	ops   string         // base URL of its ops listener
	proxy *testenv.Proxy // its only way to Consul
	args  []string
	w     *haWorld
}

// bot starts an instance with --ha, talking to Consul through a proxy of
// its own to one of the servers (so the test can cut it off), with its ops
// listener on a free port; it waits for the listener.
func (w *haWorld) bot(args ...string) *haBot {
	w.t.Helper()
	agent := w.cl.Agents[w.n%len(w.cl.Agents)]
	w.n++
	b := &haBot{proxy: testenv.StartProxy(w.t, agent.Addr()), w: w, args: args}
	b.start()
	return b
}

// start (re)starts the instance's process.
func (b *haBot) start() {
	b.w.t.Helper()
	args := append([]string{"--ha", "--registry", "consul", "--registry_address", b.proxy.Addr(),
		"--http_address", "127.0.0.1:0", "--log_level", "debug", "--log_format", "json",
		"--discovery_wait", "1s"}, b.args...)
	b.proc = start(b.w.t, fmt.Sprintf("microbot-%d", b.w.n), bins.microbot, args...)
	var rec struct{ Address string }
	line := waitLog(b.w.t, b.proc, `"msg":"ops HTTP listener started"`)
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Address == "" {
		b.w.t.Fatalf("listener line %q: %v", line, err)
	}
	b.ops = "http://" + rec.Address
}

// Pause freezes the instance (SIGSTOP): its connections stay open, it
// answers nothing.
func (b *haBot) Pause() { b.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume unfreezes it (SIGCONT).
func (b *haBot) Resume() { b.cmd.Process.Signal(syscall.SIGCONT) }

// kill kills the instance at once (SIGKILL), as a crash would.
func (b *haBot) kill() {
	b.w.t.Helper()
	if err := b.cmd.Process.Kill(); err != nil {
		b.w.t.Fatal(err)
	}
	<-b.done
}

// readyz returns the status and body of /readyz ("" if it does not answer).
func (b *haBot) readyz() (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	rsp, err := c.Get(b.ops + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer rsp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := rsp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return rsp.StatusCode, sb.String()
}

// waitReady waits until /readyz answers code with a body containing sub.
func (b *haBot) waitReady(code int, sub string) {
	b.w.t.Helper()
	deadline := time.Now().Add(haWait)
	for {
		got, body := b.readyz()
		if got == code && strings.Contains(body, sub) {
			return
		}
		if time.Now().After(deadline) {
			b.w.t.Fatalf("%s: /readyz still %d %q after %v, want %d with %q", b.name, got, body, haWait, code, sub)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// active reports whether /readyz says this instance is active for input.
func (b *haBot) active(input string) bool {
	_, body := b.readyz()
	return strings.Contains(body, "input "+input+": active (this instance)")
}

func (b *haBot) metric(series string) float64 {
	b.w.t.Helper()
	_, page := testenv.Get(b.w.t, b.ops+"/metrics")
	return testenv.Metric(page, series)
}

// roomWatch reads everything a person in the room receives and counts the
// bot's answers by their text, which the tests make unique ("echo m042"
// is answered "m042").
type roomWatch struct {
	t    testing.TB
	room string
	bot  string // the bot's bare JID

	mu      sync.Mutex
	answers map[string][]time.Time
	nicks   map[string]bool // nicks the bot had in the room
	present bool            // the bot is in the room
	joins   []time.Time     // when it entered
	changed chan struct{}
}

func watchRoom(t testing.TB, h *prosodytest.Human, room, botJID string) *roomWatch {
	rw := &roomWatch{t: t, room: room, bot: botJID, answers: map[string][]time.Time{}, nicks: map[string]bool{}, changed: make(chan struct{})}
	cl := h.Client()
	go func() {
		for {
			s, err := cl.Recv(t.Context())
			if err != nil {
				return
			}
			rw.see(s)
		}
	}()
	return rw
}

func (rw *roomWatch) see(s xmppclient.Stanza) {
	now := time.Now()
	rw.mu.Lock()
	defer rw.mu.Unlock()
	defer func() { close(rw.changed); rw.changed = make(chan struct{}) }()
	switch s := s.(type) {
	case *xmppclient.Presence:
		nick, ok := strings.CutPrefix(s.From, rw.room+"/")
		if !ok || !strings.HasPrefix(nick, "microbot") {
			return
		}
		rw.nicks[nick] = true
		avail := s.Type == xmppclient.PresenceAvailable
		if avail && !rw.present {
			rw.joins = append(rw.joins, now)
		}
		rw.present = avail
	case *xmppclient.Message:
		if s.Body == "" {
			return
		}
		fromBot := s.Type == xmppclient.MessageGroupchat && strings.HasPrefix(s.From, rw.room+"/microbot") ||
			s.Type == xmppclient.MessageChat && strings.HasPrefix(s.From, rw.bot+"/")
		if fromBot {
			rw.answers[s.Body] = append(rw.answers[s.Body], now)
		}
	}
}

// waitFor waits until cond (called under the lock) holds, or the deadline.
func (rw *roomWatch) waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.After(d)
	for {
		rw.mu.Lock()
		ok, ch := cond(), rw.changed
		rw.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// count is how many times token was answered.
func (rw *roomWatch) count(token string) int {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return len(rw.answers[token])
}

// xmppPair is two instances on one XMPP account and room, and a person
// (alice) in the room talking to the bot.
type xmppPair struct {
	t               testing.TB
	w               *haWorld
	room            string
	active, standby *haBot
	alice           *prosodytest.Human
	rw              *roomWatch
	sent            []string // the tokens said, in order
}

// newXMPPPair starts prosody, the first instance (active), the second
// (standby), and alice in the room.
func newXMPPPair(t testing.TB, extra ...string) *xmppPair {
	t.Helper()
	w := newHAWorld(t)
	srv := prosodytest.Start(t)
	srv.Register("microbot", xmppPassword)
	t.Setenv("MICRO_XMPP_PASSWORD", xmppPassword)
	room := prosodytest.Room("ops")
	args := append([]string{"--inputs", "xmpp", "--xmpp_jid", prosodytest.JID("microbot"), "--xmpp_rooms", room,
		"--xmpp_server", srv.Addr, "--xmpp_ca_file", srv.CAFile}, extra...)
	x := &xmppPair{t: t, w: w, room: room}
	x.active = w.bot(args...)
	x.active.waitReady(http.StatusOK, "input xmpp: active (this instance), connected")
	x.standby = w.bot(args...)
	x.standby.waitReady(http.StatusOK, "input xmpp: standby")
	x.alice = prosodytest.NewHuman(t, srv, "alice")
	x.alice.Join(room, "alice")
	x.alice.ExpectOccupant(room, "microbot")
	x.rw = watchRoom(t, x.alice, room, prosodytest.JID("microbot"))
	return x
}

// say asks the bot to echo token, in the room or directly.
func (x *xmppPair) say(token string, direct bool) {
	x.t.Helper()
	if direct {
		x.alice.Say(prosodytest.JID("microbot"), xmppclient.MessageChat, "echo "+token)
	} else {
		x.alice.Say(x.room, xmppclient.MessageGroupchat, "microbot: echo "+token)
	}
	x.sent = append(x.sent, token)
}

func (x *xmppPair) answered(token string) func() bool {
	return func() bool { return len(x.rw.answers[token]) > 0 }
}

// ask says token and waits for its answer.
func (x *xmppPair) ask(token string, direct bool) {
	x.t.Helper()
	x.say(token, direct)
	if !x.rw.waitFor(haWait, x.answered(token)) {
		x.t.Fatalf("%s was not answered within %v", token, haWait)
	}
}

// takeover asks, every 500 ms, until the standby answers (messages said
// while no instance is in the room reach nobody; one cut off from Consul
// answers until it steps down), swaps the roles, and returns how long
// after since the first answer of the new active instance came.
func (x *xmppPair) takeover(prefix string, since time.Time) time.Duration {
	x.t.Helper()
	deadline := time.Now().Add(haWait)
	for try := 1; ; try++ {
		token := fmt.Sprintf("%st%d", prefix, try)
		byNext := x.standby.active("xmpp") // if so, nobody else is in the room now
		x.say(token, false)
		if x.rw.waitFor(500*time.Millisecond, x.answered(token)) && byNext {
			x.rw.mu.Lock()
			at := x.rw.answers[token][0]
			x.rw.mu.Unlock()
			x.active, x.standby = x.standby, x.active
			return at.Sub(since)
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("no answer within %v of the disruption", haWait)
		}
	}
}

// joinedAfter is when the bot entered the room after t, zero if it did not.
func (x *xmppPair) joinedAfter(t time.Time) time.Time {
	x.rw.mu.Lock()
	defer x.rw.mu.Unlock()
	for _, j := range x.rw.joins {
		if j.After(t) {
			return j
		}
	}
	return time.Time{}
}

// TestHAXMPPTakeover runs two instances on one XMPP account: one is in the
// room, the other stands by. A person has a conversation of 200 messages
// (every tenth a direct message); at message 80 the active instance is
// killed (SIGKILL), at 150 the new active one is cut off from Consul. Each
// time the other takes over (the figure is logged), every message is
// answered exactly once, and the bot never has two nicks in the room.
func TestHAXMPPTakeover(t *testing.T) {
	x := newXMPPPair(t)
	if got := x.active.metric(`microbot_ha_takeovers_total{input="xmpp"}`); got != 1 {
		t.Errorf("the active one's takeovers = %v, want 1", got)
	}
	if got := x.standby.metric(`microbot_ha_active{input="xmpp"}`); got != 0 {
		t.Errorf("the standby's microbot_ha_active = %v, want 0", got)
	}
	var killed, cut time.Duration
	for i := 1; i <= 200; i++ {
		token := fmt.Sprintf("m%03d", i)
		switch i {
		case 80:
			if !x.active.active("xmpp") {
				t.Fatalf("%s is not the active one", x.active.name)
			}
			at := time.Now()
			dead := x.active
			dead.kill()
			killed = x.takeover(token, at)
			t.Logf("SIGKILL of the active instance: the next message was answered %v later", killed.Round(time.Millisecond))
			x.active.waitReady(http.StatusOK, "input xmpp: active (this instance), connected")
			if got := x.active.metric(`microbot_ha_takeovers_total{input="xmpp"}`); got != 1 {
				t.Errorf("takeovers of the instance that took over = %v, want 1", got)
			}
			// The killed one comes back, and stands by.
			dead.start()
			dead.waitReady(http.StatusOK, "input xmpp: standby")
			continue
		case 150:
			at := time.Now()
			cutOff := x.active
			cutOff.proxy.Cut()
			cut = x.takeover(token, at)
			t.Logf("the active instance cut off from Consul: the next message was answered %v later", cut.Round(time.Millisecond))
			x.active.waitReady(http.StatusOK, "input xmpp: active (this instance), connected")
			if err := cutOff.proxy.Restore(); err != nil {
				t.Fatal(err)
			}
			cutOff.waitReady(http.StatusOK, "input xmpp: standby")
			continue
		}
		x.ask(token, i%10 == 0)
	}

	// Every message said was answered once (a few said while nobody was
	// in the room, none), and the bot was only ever "microbot" there.
	x.ask("end", false)
	rw := x.rw
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for _, token := range x.sent {
		n := len(rw.answers[token])
		if n > 1 || n == 0 && !strings.Contains(token, "t") {
			t.Errorf("%s answered %d times", token, n)
		}
	}
	for token, at := range rw.answers {
		if len(at) > 1 {
			t.Errorf("%s answered %d times", token, len(at))
		}
	}
	for nick := range rw.nicks {
		if nick != "microbot" {
			t.Errorf("the bot was in the room as %q: two instances at once", nick)
		}
	}
	if len(x.sent) < 200 {
		t.Errorf("%d messages", len(x.sent))
	}
	t.Logf("%d messages, takeover after SIGKILL %v, after losing Consul %v", len(x.sent), killed.Round(time.Millisecond), cut.Round(time.Millisecond))
}

// TestHASlack runs two instances on one Slack app, each with its own Socket
// Mode connection; the fake Slack spreads 200 messages over them, sends
// Slack's retries and one message as two events to the other connection,
// retries a delivery on the other connection while the first instance is
// frozen, and a confirmation asked on one instance is given on the other.
// One instance is killed and started again on the way. Every message is
// answered exactly once.
func TestHASlack(t *testing.T) {
	w := newHAWorld(t)
	srv := slacktestws.New(slacktestws.WithRoundRobin(), slacktestws.WithUser("U1", "Ada"), slacktestws.WithUser("UADMIN", "Root"),
		slacktestws.WithPingInterval(time.Second))
	t.Cleanup(srv.Close)
	t.Setenv("MICRO_SLACK_APP_TOKEN", srv.AppToken)
	t.Setenv("MICRO_SLACK_BOT_TOKEN", srv.BotToken)
	args := []string{"--inputs", "slack", "--slack_api_url", srv.APIURL(), "--admins", "slack:UADMIN"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	a := w.bot(args...)
	if err := srv.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b := w.bot(args...)
	if err := srv.WaitConnections(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*haBot{a, b} {
		x.waitReady(http.StatusOK, "input slack: active (every instance), connected")
	}
	conn := map[*haBot]int{a: 1, b: 2}
	// other is a live connection but n (n itself while it is alone).
	other := func(n int) int {
		for _, c := range srv.LiveConnections() {
			if c != n {
				return c
			}
		}
		return n
	}

	mention := "<@" + srv.BotUserID + "> "
	posts := func(text string) int {
		n := 0
		for _, p := range srv.Posts() {
			if p.Text == text {
				n++
			}
		}
		return n
	}
	answered := func(token string) {
		t.Helper()
		if err := srv.WaitFor(ctx, func() bool { return posts(token) > 0 }); err != nil {
			t.Fatalf("%s was not answered: %v", token, err)
		}
	}
	deliver := func(m slacktestws.Message, direct bool) slacktestws.Delivery {
		t.Helper()
		var d slacktestws.Delivery
		var err error
		if direct {
			d, err = srv.DirectMessage(ctx, m)
		} else {
			d, err = srv.Mention(ctx, m)
		}
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var tokens []string
	for i := 1; i <= 200; i++ {
		token := fmt.Sprintf("s%03d", i)
		tokens = append(tokens, token)
		switch {
		case i == 50:
			// The instance a delivery went to is frozen (it cannot ack): Slack
			// retries on the other connection, which answers; the first
			// wakes up with the delivery still in hand and must drop it.
			a.Pause()
			d := deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token, Connection: conn[a]}, false)
			deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token, TS: d.TS, EventID: d.EventID, RetryAttempt: 1, Connection: conn[b]}, false)
			answered(token)
			a.Resume()
			if err := srv.WaitAck(ctx, d.EnvelopeID); err != nil {
				t.Fatal(err)
			}
		case i == 100:
			// Every answer is out; a is killed; b answers alone.
			for _, tk := range tokens[:len(tokens)-1] {
				answered(tk)
			}
			a.kill()
			if err := srv.WaitFor(ctx, func() bool { return len(srv.LiveConnections()) == 1 }); err != nil {
				t.Fatal(err)
			}
			deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token}, false)
		case i == 120:
			// a is back, on a new connection.
			a.start()
			if err := srv.WaitConnections(ctx, 3); err != nil {
				t.Fatal(err)
			}
			conn[a] = 3
			a.waitReady(http.StatusOK, "input slack: active (every instance), connected")
			deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token}, false)
		case i%10 == 0:
			// One direct message, as two events on the two connections.
			d := deliver(slacktestws.Message{Channel: "D1", User: "U1", Text: "echo " + token}, true)
			deliver(slacktestws.Message{Channel: "D1", User: "U1", Text: mention + "echo " + token, TS: d.TS, Connection: other(d.Connection)}, false)
		case i%4 == 0:
			// Slack's retry on the other connection, at once.
			d := deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token}, false)
			deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token, TS: d.TS, EventID: d.EventID, RetryAttempt: 1, Connection: other(d.Connection)}, false)
		case i%4 == 2:
			// ... and once the first delivery was answered.
			d := deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token}, false)
			answered(token)
			deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token, TS: d.TS, EventID: d.EventID, RetryAttempt: 2, Connection: other(d.Connection)}, false)
		default:
			deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo " + token}, false)
		}
	}

	// A confirmation asked on one instance, given on the other.
	const def = `{"name": "go.micro.srv.hatest", "nodes": [{"id": "hatest-1", "address": "127.0.0.1:9"}]}`
	for _, token := range tokens {
		answered(token)
	}
	before := len(srv.Posts())
	deliver(slacktestws.Message{Channel: "C1", User: "UADMIN", Text: mention + "register service " + def, Connection: conn[a]}, false)
	var ask string
	if err := srv.WaitFor(ctx, func() bool {
		for _, p := range srv.Posts()[before:] {
			if strings.Contains(p.Text, "needs confirmation") {
				ask = p.Text
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	code := codeIn(t, ask)
	deliver(slacktestws.Message{Channel: "C1", User: "UADMIN", Text: mention + "confirm " + code, Connection: conn[b]}, false)
	if err := srv.WaitFor(ctx, func() bool { return posts("registered go.micro.srv.hatest (1 node)") == 1 }); err != nil {
		t.Fatalf("the confirmation on the other instance: %v; posts %v", err, srv.Posts()[before:])
	}
	cl, err := w.cl.Agents[0].API()
	if err != nil {
		t.Fatal(err)
	}
	if svcs, _, err := cl.Catalog().Service("go.micro.srv.hatest", "", nil); err != nil || len(svcs) != 1 {
		t.Errorf("go.micro.srv.hatest in Consul: %v %v", svcs, err)
	}

	// Late duplicates would come by now: a last message, then the counts.
	deliver(slacktestws.Message{Channel: "C1", User: "U1", Text: mention + "echo end"}, false)
	answered("end")
	for _, token := range tokens {
		if n := posts(token); n != 1 {
			t.Errorf("%s answered %d times", token, n)
		}
	}
	t.Logf("%d posts, %d acks, %d connections opened", len(srv.Posts()), len(srv.Acks()), srv.Connections())
}

// TestHAEvents: two instances on Slack and one XMPP account, a routes file
// sending a topic to a Slack channel and the XMPP room, NATS as the broker.
// 100 events are published, one at a time (a storm would be folded); after
// the 50th is posted the instance serving XMPP is killed (SIGKILL) and the
// next ones are published while the other takes over (the room has no bot
// for seconds). Each of the 100 is posted exactly once in the channel and
// once in the room.
func TestHAEvents(t *testing.T) {
	w := newHAWorld(t)
	natsAddr := natstest.Start(t).Addr
	xsrv := prosodytest.Start(t)
	xsrv.Register("microbot", xmppPassword)
	t.Setenv("MICRO_XMPP_PASSWORD", xmppPassword)
	ssrv := slacktestws.New(slacktestws.WithRoundRobin(), slacktestws.WithPingInterval(time.Second))
	t.Cleanup(ssrv.Close)
	t.Setenv("MICRO_SLACK_APP_TOKEN", ssrv.AppToken)
	t.Setenv("MICRO_SLACK_BOT_TOKEN", ssrv.BotToken)
	room := prosodytest.Room("ops")
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n  - topic: deploys\n    rooms: [slack:C1, xmpp:"+room+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--inputs", "slack,xmpp", "--slack_api_url", ssrv.APIURL(),
		"--xmpp_jid", prosodytest.JID("microbot"), "--xmpp_rooms", room, "--xmpp_server", xsrv.Addr, "--xmpp_ca_file", xsrv.CAFile,
		"--broker", "nats", "--broker_address", natsAddr, "--notify_routes", routes, "--notify_interval", "0"}
	a := w.bot(args...)
	a.waitReady(http.StatusOK, "input xmpp: active (this instance), connected")
	b := w.bot(args...)
	b.waitReady(http.StatusOK, "input xmpp: standby")
	for _, x := range []*haBot{a, b} {
		x.waitReady(http.StatusOK, "input slack: active (every instance), connected")
		waitLog(t, x.proc, `"msg":"subscribed","topic":"deploys"`)
	}
	alice := prosodytest.NewHuman(t, xsrv, "alice")
	alice.Join(room, "alice")
	alice.ExpectOccupant(room, "microbot")
	rw := watchRoom(t, alice, room, prosodytest.JID("microbot"))

	pub := testPublisher(t, w.cl.Agents[0].Addr(), []string{"--registry", "consul", "--broker", "nats", "--broker_address", natsAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inSlack := func(token string) int {
		n := 0
		for _, p := range ssrv.Posts() {
			text := p.Text
			for _, at := range p.Attachments {
				text += "\n" + at.Title + "\n" + at.Text
			}
			n += strings.Count(text, token)
		}
		return n
	}
	inRoom := func(token string) int {
		rw.mu.Lock()
		defer rw.mu.Unlock()
		n := 0
		for body, at := range rw.answers {
			n += strings.Count(body, token) * len(at)
		}
		return n
	}
	token := func(i int) string { return fmt.Sprintf("ev-%03d", i) }
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		rw.mu.Lock()
		t.Logf("the room got %d messages from the bot; the channel %d posts", len(rw.answers), len(ssrv.Posts()))
		rw.mu.Unlock()
		for _, x := range []*haBot{a, b} {
			if c, _ := x.readyz(); c != 0 {
				_, page := testenv.Get(t, x.ops+"/metrics")
				for l := range strings.SplitSeq(page, "\n") {
					if strings.HasPrefix(l, "microbot_notify") {
						t.Logf("%s %s", x.name, l)
					}
				}
			}
		}
	})
	for i := 1; i <= 100; i++ {
		h := map[string]string{"Content-Type": "text/plain"}
		if i%2 == 0 {
			h[client.HeaderID] = "e2e-" + token(i) // half with the publisher's id, half without
		}
		if err := pub.Publish(ctx, "deploys", &broker.Message{Header: h, Body: []byte("deploy " + token(i))}); err != nil {
			t.Fatal(err)
		}
		// One at a time in the channel (a storm would be folded); in the
		// room too until the kill, then during the takeover they pile up.
		testenv.Eventually(t, haWait, token(i)+" posted in the channel", func() bool {
			return inSlack(token(i)) > 0 && (i > 50 || inRoom(token(i)) > 0)
		})
		if i == 50 {
			a.kill()
		}
	}
	testenv.Eventually(t, haWait, "the 100 events posted in the channel and the room", func() bool {
		for i := 1; i <= 100; i++ {
			if inSlack(token(i)) == 0 || inRoom(token(i)) == 0 {
				return false
			}
		}
		return true
	})
	// A last event: duplicates would be out by the time it is.
	if err := pub.Publish(ctx, "deploys", &broker.Message{Header: map[string]string{"Content-Type": "text/plain"}, Body: []byte("deploy ev-end")}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, haWait, "the last event posted", func() bool { return inSlack("ev-end") > 0 && inRoom("ev-end") > 0 })
	for i := 1; i <= 100; i++ {
		if s, r := inSlack(token(i)), inRoom(token(i)); s != 1 || r != 1 {
			t.Errorf("%s posted %d times in the channel, %d in the room", token(i), s, r)
		}
	}
	for nick := range rw.nicks {
		if nick != "microbot" {
			t.Errorf("the bot was in the room as %q", nick)
		}
	}
	t.Logf("elsewhere (claimed by the other) on b: %v; b posted: %v", b.metric(`microbot_notify_deliveries_total{outcome="elsewhere",topic="deploys"}`),
		b.metric(`microbot_notify_deliveries_total{outcome="posted",topic="deploys"}`))
}
