package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry/consul/consultest"
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
	t  *testing.T
	cl *consultest.Cluster
	n  int // instances started
}

func newHAWorld(t *testing.T) *haWorld {
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
	t    *testing.T
	room string
	bot  string // the bot's bare JID

	mu      sync.Mutex
	answers map[string][]time.Time
	nicks   map[string]bool // nicks the bot had in the room
	present bool            // the bot is in the room
	changed chan struct{}
}

func watchRoom(t *testing.T, h *prosodytest.Human, room, botJID string) *roomWatch {
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
		rw.present = s.Type == xmppclient.PresenceAvailable
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

// TestHAXMPPTakeover runs two instances on one XMPP account: one is in the
// room, the other stands by. A person has a conversation of 200 messages
// (every tenth a direct message); at message 80 the active instance is
// killed (SIGKILL), at 150 the new active one is cut off from Consul. Each
// time the other takes over (the figure is logged), every message is
// answered exactly once, and the bot never has two nicks in the room.
func TestHAXMPPTakeover(t *testing.T) {
	w := newHAWorld(t)
	srv := prosodytest.Start(t)
	srv.Register("microbot", xmppPassword)
	t.Setenv("MICRO_XMPP_PASSWORD", xmppPassword)
	room := prosodytest.Room("ops")
	xmppArgs := []string{"--inputs", "xmpp", "--xmpp_jid", prosodytest.JID("microbot"), "--xmpp_rooms", room,
		"--xmpp_server", srv.Addr, "--xmpp_ca_file", srv.CAFile}

	a := w.bot(xmppArgs...)
	a.waitReady(http.StatusOK, "input xmpp: active (this instance), connected")
	b := w.bot(xmppArgs...)
	b.waitReady(http.StatusOK, "input xmpp: standby")
	if got := a.metric(`microbot_ha_takeovers_total{input="xmpp"}`); got != 1 {
		t.Errorf("a's takeovers = %v, want 1", got)
	}
	if got := b.metric(`microbot_ha_active{input="xmpp"}`); got != 0 {
		t.Errorf("b's microbot_ha_active = %v, want 0", got)
	}

	alice := prosodytest.NewHuman(t, srv, "alice")
	alice.Join(room, "alice")
	alice.ExpectOccupant(room, "microbot")
	rw := watchRoom(t, alice, room, prosodytest.JID("microbot"))
	say := func(token string, direct bool) {
		t.Helper()
		if direct {
			alice.Say(prosodytest.JID("microbot"), xmppclient.MessageChat, "echo "+token)
		} else {
			alice.Say(room, xmppclient.MessageGroupchat, "microbot: echo "+token)
		}
	}
	answered := func(token string) func() bool {
		return func() bool { return len(rw.answers[token]) > 0 }
	}
	var sent []string
	ask := func(token string, direct bool) {
		t.Helper()
		say(token, direct)
		sent = append(sent, token)
		if !rw.waitFor(haWait, answered(token)) {
			t.Fatalf("%s was not answered within %v", token, haWait)
		}
	}
	// takeover asks, every 500 ms, until next answers (messages said while
	// no instance is in the room reach nobody; the one cut off from Consul
	// answers until it steps down), and returns how long after the
	// disruption next's first answer came.
	takeover := func(i int, since time.Time, next *haBot) time.Duration {
		t.Helper()
		deadline := time.Now().Add(haWait)
		for try := 1; ; try++ {
			token := fmt.Sprintf("m%03dt%d", i, try)
			byNext := next.active("xmpp") // if so, nobody else is in the room now
			say(token, false)
			sent = append(sent, token)
			if rw.waitFor(500*time.Millisecond, answered(token)) && byNext {
				rw.mu.Lock()
				at := rw.answers[token][0]
				rw.mu.Unlock()
				return at.Sub(since)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer within %v of the disruption", haWait)
			}
		}
	}

	var killed, cut time.Duration
	active, standby := a, b
	for i := 1; i <= 200; i++ {
		switch i {
		case 80:
			if !active.active("xmpp") {
				t.Fatalf("%s is not the active one", active.name)
			}
			at := time.Now()
			active.kill()
			killed = takeover(i, at, standby)
			t.Logf("SIGKILL of the active instance: the next message was answered %v later", killed.Round(time.Millisecond))
			standby.waitReady(http.StatusOK, "input xmpp: active (this instance), connected")
			if got := standby.metric(`microbot_ha_takeovers_total{input="xmpp"}`); got != 1 {
				t.Errorf("takeovers of the instance that took over = %v, want 1", got)
			}
			// The killed one comes back, and stands by.
			active.start()
			active.waitReady(http.StatusOK, "input xmpp: standby")
			active, standby = standby, active
			continue
		case 150:
			at := time.Now()
			active.proxy.Cut()
			cut = takeover(i, at, standby)
			t.Logf("the active instance cut off from Consul: the next message was answered %v later", cut.Round(time.Millisecond))
			standby.waitReady(http.StatusOK, "input xmpp: active (this instance), connected")
			if err := active.proxy.Restore(); err != nil {
				t.Fatal(err)
			}
			active.waitReady(http.StatusOK, "input xmpp: standby")
			active, standby = standby, active
			continue
		}
		ask(fmt.Sprintf("m%03d", i), i%10 == 0)
	}

	// Every message said was answered once (a few said while nobody was
	// in the room, none), and the bot was only ever "microbot" there.
	ask("end", false)
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for _, token := range sent {
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
	if len(sent) < 200 {
		t.Errorf("%d messages", len(sent))
	}
	t.Logf("%d messages, takeover after SIGKILL %v, after losing Consul %v", len(sent), killed.Round(time.Millisecond), cut.Round(time.Millisecond))
}
