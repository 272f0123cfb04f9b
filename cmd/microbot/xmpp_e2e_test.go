package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/prosodytest"
	"github.com/microbot/microbot/internal/testenv"
)

// These tests run the real microbot binary on the xmpp input against a real
// prosody server (internal/prosodytest: free loopback ports, self-signed
// certificate trusted through --xmpp_ca_file, a non-anonymous MUC
// component). People are XMPP clients (input/xmpp/xmppclient) with their
// own accounts; the greeter and command services are separate processes in
// a local registry, as in e2e_test.go. Without prosody the tests fail under
// CI=true (prosodytest uses internal/testenv) and are skipped elsewhere.

// xmppPassword is the bot's password: given through MICRO_XMPP_PASSWORD,
// never on the command line, it must never show in the bot's logs.
const xmppPassword = "xmpp-Pw-e2e-5ecret-7719"

// xmppWait bounds every wait of these tests.
const xmppWait = 30 * time.Second

// xmppWorld is a prosody server with the bot's account, a room, and a
// registry directory with the greeter in it.
type xmppWorld struct {
	*world
	srv  *prosodytest.Server
	room string
	// answers counts the bot's answers in the room so far. Every occupant
	// gets every answer, in the same order: a human skips those it has not
	// read yet (answers to others) to find the answer to its own question.
	answers int
}

func newXMPPWorld(t *testing.T) *xmppWorld {
	srv := prosodytest.Start(t) // first: without prosody, fail (CI) or skip before building anything
	x := &xmppWorld{world: newWorld(t), srv: srv, room: prosodytest.Room("ops")}
	srv.Register("microbot", xmppPassword)
	x.greeter()
	return x
}

// xmppBot is microbot on the xmpp input.
type xmppBot struct {
	*proc
	ops string // base URL of its ops listener
}

// bot starts microbot in the room with the password in its environment,
// debug logs in JSON (where a password would leak if it could) and the ops
// listener on a free loopback port; it waits for the listener.
func (x *xmppWorld) bot(args ...string) *xmppBot {
	x.t.Helper()
	x.t.Setenv("MICRO_XMPP_PASSWORD", xmppPassword)
	args = append([]string{"--inputs", "xmpp", "--registry_address", x.reg,
		"--xmpp_jid", prosodytest.JID("microbot"), "--xmpp_rooms", x.room,
		"--xmpp_server", x.srv.Addr, "--xmpp_ca_file", x.srv.CAFile,
		"--http_address", "127.0.0.1:0", "--log_level", "debug", "--log_format", "json"}, args...)
	p := start(x.t, "microbot", bins.microbot, args...)
	var rec struct{ Address string }
	line := waitLog(x.t, p, `"msg":"ops HTTP listener started"`)
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Address == "" {
		x.t.Fatalf("listener line %q: %v", line, err)
	}
	return &xmppBot{proc: p, ops: "http://" + rec.Address}
}

// waitLog waits for a line of p's standard error containing sub and
// returns it.
func waitLog(t testing.TB, p *proc, sub string) string {
	t.Helper()
	deadline := time.Now().Add(xmppWait)
	for {
		for l := range strings.SplitSeq(p.stderr.String(), "\n") {
			if strings.Contains(l, sub) {
				return l
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before logging %s", p.name, p.err, sub)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %s within %v", p.name, sub, xmppWait)
		}
	}
}

// readyz returns the status and body of the bot's /readyz.
func (b *xmppBot) readyz(t *testing.T) (int, string) {
	t.Helper()
	return testenv.Get(t, b.ops+"/readyz")
}

// metric returns the value of series on the bot's /metrics, -1 if absent.
func (b *xmppBot) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, page := testenv.Get(t, b.ops+"/metrics")
	return testenv.Metric(page, series)
}

// waitReady polls /readyz until it answers code with a body containing sub.
func (b *xmppBot) waitReady(t *testing.T, code int, sub string) {
	t.Helper()
	deadline := time.Now().Add(xmppWait)
	for {
		got, body := b.readyz(t)
		if got == code && strings.Contains(body, sub) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q after %v, want %d with %q", got, body, xmppWait, code, sub)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSecret fails if the password (or its base64, as SASL sends it)
// shows in the bot's logs or on its command line.
func (b *xmppBot) checkSecret(t *testing.T) {
	t.Helper()
	logs := b.stderr.String()
	if strings.Count(logs, "\n") < 3 {
		t.Errorf("only %d log lines: is the bot logging at all?", strings.Count(logs, "\n"))
	}
	for _, s := range []string{xmppPassword, "5ecret", base64.StdEncoding.EncodeToString([]byte(xmppPassword)),
		base64.StdEncoding.EncodeToString([]byte("\x00microbot\x00" + xmppPassword))} {
		if strings.Contains(logs, s) {
			t.Errorf("the password shows in the bot's logs (%q)", s)
		}
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(b.cmd.Process.Pid) + "/cmdline")
	if err == nil && strings.Contains(string(cmdline), xmppPassword) {
		t.Error("the password is on the bot's command line")
	}
}

// human is a person's XMPP client in the room.
type human struct {
	*prosodytest.Human
	x *xmppWorld
	// answers counts the bot's answers in the room this human has read.
	answers int
}

// human registers name (password name-pw) and logs them in.
func (x *xmppWorld) human(name string) *human {
	x.t.Helper()
	h := &human{Human: prosodytest.NewHuman(x.t, x.srv, name), x: x}
	h.OnStanza = func(s xmppclient.Stanza) {
		if h.answer(s) {
			h.answers++
		}
	}
	return h
}

// join enters the room as nick and waits until the bot is in it too.
func (h *human) join(nick string) {
	h.x.t.Helper()
	h.Join(h.x.room, nick)
	h.answers = h.x.answers
	h.ExpectOccupant(h.x.room, "microbot")
}

// answer reports whether s is an answer of the bot in the room.
func (h *human) answer(s xmppclient.Stanza) bool {
	m, ok := s.(*xmppclient.Message)
	return ok && m.Body != "" && m.Type == xmppclient.MessageGroupchat && m.From == h.x.room+"/microbot"
}

// reply waits for the next message with a body from the bot: in the room
// (room true; the answers to others' questions are skipped) or directly.
// Questions in the room must be asked one at a time.
func (h *human) reply(room bool, what string) string {
	h.x.t.Helper()
	return h.Expect("the bot's answer to "+what, func(s xmppclient.Stanza) bool {
		if room {
			if h.answer(s) && h.answers > h.x.answers { // not an answer to someone else
				h.x.answers = h.answers
				return true
			}
			return false
		}
		m, ok := s.(*xmppclient.Message)
		return ok && m.Body != "" && m.Type == xmppclient.MessageChat && strings.HasPrefix(m.From, prosodytest.JID("microbot")+"/")
	}).(*xmppclient.Message).Body
}

// sayRoom says body in the room.
func (h *human) sayRoom(body string) {
	h.x.t.Helper()
	h.Say(h.x.room, xmppclient.MessageGroupchat, body)
}

// inRoom says text in the room, addressed to the bot, and returns its
// answer there.
func (h *human) inRoom(text string) string {
	h.x.t.Helper()
	h.sayRoom("microbot: " + text)
	return h.reply(true, text)
}

// direct sends text to the bot in a direct message and returns its answer.
func (h *human) direct(text string) string {
	h.x.t.Helper()
	h.Say(prosodytest.JID("microbot"), xmppclient.MessageChat, text)
	return h.reply(false, text)
}

// until asks (with ask) until the answer satisfies ok, up to xmppWait.
func (h *human) until(ask func(string) string, text string, ok func(string) bool) string {
	h.x.t.Helper()
	deadline := time.Now().Add(xmppWait)
	for {
		rep := ask(text)
		if ok(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			h.x.t.Fatalf("%s: %q still answered %q after %v", h.Name, text, rep, xmppWait)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestXMPPRoomAndDirect(t *testing.T) {
	x := newXMPPWorld(t)
	bot := x.bot()
	alice := x.human("alice")
	alice.join("alice")
	bot.waitReady(t, http.StatusOK, "input xmpp: connected")

	list := alice.until(alice.inRoom, "list services", contains("go.micro.srv.greeter"))
	expect(t, "list services", list, contains("go.micro.srv.bot"))
	// The name is sent as typed (JSON-escaped on the way, XML-escaped on the
	// wire both ways) and comes back intact.
	const name = `<&]]></body>'"`
	q := alice.inRoom(`query go.micro.srv.greeter Say.Hello {"name": "<&]]></body>'\""}`)
	if want := "```\n{\n  \"msg\": \"Hello " + strings.ReplaceAll(name, `"`, `\"`) + "\"\n}\n```"; q != want {
		t.Errorf("query in the room:\n got %q\nwant %q", q, want)
	}
	for _, body := range []string{"MicroBot, ping", "  @MICROBOT ping", "microbot ping"} {
		alice.sayRoom(body)
		if got := alice.reply(true, body); got != "pong" {
			t.Errorf("%q: %q", body, got)
		}
	}

	// Messages not addressed to the bot get no answer: the next answers are
	// those of the addressed messages after them, and nothing else.
	for _, body := range []string{"list services", "ping", "hello microbot", "microbots are cool", "@microbot echo first", "microbot echo second"} {
		alice.sayRoom(body)
	}
	got := map[string]bool{alice.reply(true, "echo first"): true, alice.reply(true, "echo second"): true}
	if len(got) != 2 || !got["first"] || !got["second"] {
		t.Errorf("answers after unaddressed messages: %v, want only first and second", got)
	}

	// A direct message needs no nick.
	if got := alice.direct("ping"); got != "pong" {
		t.Errorf("direct ping: %q", got)
	}
	if got := alice.direct("microbot: echo hi <there>"); got != "hi <there>" {
		t.Errorf("direct echo with the nick: %q", got)
	}
	if got := alice.direct(`query go.micro.srv.greeter Say.Hello {"name": "DM"}`); got != "```\n{\n  \"msg\": \"Hello DM\"\n}\n```" {
		t.Errorf("direct query: %q", got)
	}
	bot.checkSecret(t)
	bot.stop(t)
	if bot.err != nil {
		t.Errorf("microbot exited with %v", bot.err)
	}
}

func TestXMPPAccessByJID(t *testing.T) {
	x := newXMPPWorld(t)
	dir := t.TempDir()
	policy, auditLog := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "audit.log")
	writePolicy(t, policy, `# alice, by her bare JID, may register and deregister services
rules:
  - commands: [register service, deregister service]
    users: [xmpp:Alice@localhost]
    action: allow
`)
	x.whoamiService("go.micro.bot.whoami", "")
	bot := x.bot("--policy", policy, "--audit_log", auditLog)
	alice, bob := x.human("alice"), x.human("bob")
	// bob takes the nick "alice" in the room (nicks are anyone's); alice is "al".
	bob.join("alice")
	alice.join("al")
	alice.until(alice.inRoom, "help", contains("whoami [words]"))

	// Who the bot says is asking, in the room and directly.
	if got := alice.inRoom("whoami a"); got != "whoami ran: input=xmpp user_id=alice@localhost user_name=al room="+x.room+" confirmed_by= args=a" {
		t.Errorf("alice's whoami in the room: %q", got)
	}
	if got := bob.inRoom("whoami b"); got != "whoami ran: input=xmpp user_id=bob@localhost user_name=alice room="+x.room+" confirmed_by= args=b" {
		t.Errorf("bob's whoami in the room: %q", got)
	}
	if got := alice.direct("whoami c"); got != "whoami ran: input=xmpp user_id=alice@localhost user_name=alice room=alice@localhost confirmed_by= args=c" {
		t.Errorf("alice's direct whoami: %q", got)
	}

	const def = `{"name": "go.micro.srv.extra", "nodes": [{"id": "extra-1", "address": "127.0.0.1:9"}]}`
	const denied = "you are not allowed to run %s service on go.micro.srv.extra here (admins only)"
	deniedRegister, deniedDeregister := fmt.Sprintf(denied, "register"), fmt.Sprintf(denied, "deregister")
	// bob, whose nick is "alice", is denied in the room and directly.
	if got := bob.inRoom("register service " + def); got != deniedRegister {
		t.Errorf("bob's register in the room: %q", got)
	}
	if got := bob.direct("register service " + def); got != deniedRegister {
		t.Errorf("bob's direct register: %q", got)
	}
	// alice may, after confirming; bob cannot confirm for her.
	rep := alice.inRoom("register service " + def)
	code := codeIn(t, rep)
	if rep != `register service needs confirmation: type "confirm `+code+`" here within 2m` {
		t.Errorf("alice's register: %q", rep)
	}
	if got := bob.inRoom("confirm " + code); got != "error: only the person who asked for register service can confirm it" {
		t.Errorf("bob confirming alice's code: %q", got)
	}
	if got := alice.inRoom("confirm " + code); got != "registered go.micro.srv.extra (1 node)" {
		t.Errorf("alice confirming: %q", got)
	}
	alice.until(alice.inRoom, "list services", contains("go.micro.srv.extra"))

	if got := bob.direct("deregister service " + def); got != deniedDeregister {
		t.Errorf("bob's direct deregister: %q", got)
	}
	code = codeIn(t, alice.direct("deregister service "+def))
	if got := alice.direct("confirm " + code); got != "deregistered go.micro.srv.extra (1 node)" {
		t.Errorf("alice confirming directly: %q", got)
	}
	alice.until(alice.inRoom, "list services", lacks("go.micro.srv.extra"))

	var got []string
	for _, r := range auditRecords(t, auditLog) {
		if r.Input != "xmpp" {
			t.Errorf("audit record of input %q", r.Input)
		}
		if strings.HasSuffix(r.Command, " service") && r.Command != "list services" || r.Command == "confirm" {
			got = append(got, r.UserID+" "+r.Room+" "+r.Command+" "+r.Decision)
		}
	}
	room := x.room
	want := []string{
		"bob@localhost " + room + " register service denied",
		"bob@localhost bob@localhost register service denied",
		"alice@localhost " + room + " register service confirmation-required",
		"bob@localhost " + room + " register service denied",
		"alice@localhost " + room + " register service confirmed",
		"bob@localhost bob@localhost deregister service denied",
		"alice@localhost alice@localhost deregister service confirmation-required",
		"alice@localhost alice@localhost deregister service confirmed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	bot.checkSecret(t)
}

func TestXMPPReconnect(t *testing.T) {
	x := newXMPPWorld(t)
	bot := x.bot()
	alice := x.human("alice")
	alice.join("alice")
	alice.until(alice.inRoom, "list services", contains("go.micro.srv.greeter"))
	bot.waitReady(t, http.StatusOK, "input xmpp: connected")

	// The server goes away: the bot is alive but not ready.
	down := time.Now()
	x.srv.Stop()
	bot.waitReady(t, http.StatusServiceUnavailable, "input xmpp: not connected")
	t.Logf("/readyz 503 %v after stopping prosody", time.Since(down).Round(time.Millisecond))
	if code, body := bot.readyz(t); !strings.Contains(body, "registry local: reachable") {
		t.Errorf("/readyz while prosody is down: %d %q", code, body)
	}
	// It comes back: the bot reconnects, joins the room again and answers.
	time.Sleep(2 * time.Second) // a few failed reconnection attempts
	up := time.Now()
	x.srv.Start()
	bot.waitReady(t, http.StatusOK, "input xmpp: connected")
	t.Logf("/readyz 200 %v after starting prosody again", time.Since(up).Round(time.Millisecond))
	alice.Connect()
	alice.join("alice")
	if got := alice.inRoom("ping"); got != "pong" {
		t.Errorf("ping in the room after the restart: %q", got)
	}
	if got := alice.direct("ping"); got != "pong" {
		t.Errorf("direct ping after the restart: %q", got)
	}
	expect(t, "list services after the restart", alice.inRoom("list services"), contains("go.micro.srv.greeter"))
	waitLog(t, bot.proc, "xmpp: connection lost; reconnecting")
	// The input reconnected by itself: the metrics saw it all the same.
	for _, series := range []string{`microbot_input_reconnects_total{input="xmpp"}`, `microbot_input_failures_total{input="xmpp"}`, `microbot_input_connected{input="xmpp"}`} {
		if got := bot.metric(t, series); got < 1 {
			t.Errorf("%s = %v, want at least 1", series, got)
		}
	}
	bot.checkSecret(t)
	bot.stop(t)
	if bot.err != nil {
		t.Errorf("microbot exited with %v", bot.err)
	}
}
