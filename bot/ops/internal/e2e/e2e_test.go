package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input/slack/slacktestws"

	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/internal/testenv"
)

// Tokens the bot gets from its environment, as in a deployment; they must
// never show in its logs.
const (
	appToken = "xapp-1-A0E2E-1-opsappsecret7731"
	botToken = "xoxb-1-opsbotsecret-5520-zq"
)

// wait bounds every wait for a condition of these tests.
const wait = 60 * time.Second

// The binaries the tests run, built once per test process.
var bins struct {
	microbot, greeter, sleeper string
}

// TestMain removes the binaries after the tests.
func TestMain(m *testing.M) { testenv.Main(m) }

// build builds microbot, the greeter and sleepsvc (with -race when the tests
// run with it, so a race in a child fails the test too).
func build(t *testing.T) {
	t.Helper()
	bins.microbot = testenv.Build(t, "github.com/microbot/microbot/cmd/microbot")
	bins.greeter = testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	bins.sleeper = testenv.Build(t, "github.com/microbot/microbot/bot/ops/internal/sleepsvc")
}

// proc is a child process whose output lines the test can wait for.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	stderr  []string
	stdout  []string
	changed chan struct{}

	done chan struct{}
	err  error // the exit, once done is closed
}

func start(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.StartCommand(p.cmd); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Go(func() { p.read(stderr, &p.stderr) })
	readers.Go(func() { p.read(stdout, &p.stdout) })
	go func() {
		readers.Wait() // every line read before Wait closes the pipes
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.output())
		}
	})
	return p
}

func (p *proc) read(r io.Reader, into *[]string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		p.mu.Lock()
		*into = append(*into, sc.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// output returns standard error so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.stderr, "\n")
}

// waitLine waits up to 60 s for a line of standard output (stdout true) or
// error matching ok, and returns it.
func (p *proc) waitLine(stdout bool, what string, ok func(string) bool) string {
	p.t.Helper()
	deadline := time.After(60 * time.Second)
	seen := 0
	for {
		p.mu.Lock()
		lines, changed := p.stderr, p.changed
		if stdout {
			lines = p.stdout
		}
		lines = lines[seen:]
		seen += len(lines)
		p.mu.Unlock()
		for _, l := range lines {
			if ok(l) {
				return l
			}
		}
		select {
		case <-changed:
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before %s", p.name, p.err, what)
		case <-deadline:
			p.t.Fatalf("%s: no %s within 60 s", p.name, what)
		}
	}
}

// world is a local registry directory, a fake Slack, and processes.
type world struct {
	t     *testing.T
	reg   string
	slack *slacktestws.Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	build(t)
	srv := slacktestws.New(slacktestws.WithTokens(appToken, botToken), slacktestws.WithUser("U1", "Ada"),
		slacktestws.WithPingInterval(500*time.Millisecond))
	t.Cleanup(srv.Close)
	return &world{t: t, reg: t.TempDir(), slack: srv}
}

func (w *world) registry() registry.Registry {
	w.t.Helper()
	r, err := local.New(local.WithDir(w.reg))
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// waitService waits until the registry has (want true) or lacks service.
func (w *world) waitService(service string, want bool) {
	w.t.Helper()
	r := w.registry()
	testenv.Eventually(w.t, wait, fmt.Sprintf("%s registered=%v", service, want), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := r.GetService(ctx, service)
		if want {
			return err == nil
		}
		return errors.Is(err, registry.ErrNotFound)
	})
}

// bot starts microbot on the fake Slack with the ops listener on a free
// loopback port, the tokens in its environment, and debug logs (Slack's
// included): the place where a token would leak if one could.
func (w *world) bot(args ...string) (*proc, string) {
	w.t.Helper()
	args = append([]string{"--registry_address", w.reg, "--inputs", "slack", "--slack_api_url", w.slack.APIURL(),
		"--http_address", "127.0.0.1:0", "--log_level", "debug", "--slack_debug", "--discovery_wait", "20s"}, args...)
	p := start(w.t, "microbot", bins.microbot,
		[]string{"MICRO_SLACK_APP_TOKEN=" + appToken, "MICRO_SLACK_BOT_TOKEN=" + botToken}, args...)
	line := p.waitLine(false, "the ops listener's address", func(l string) bool {
		return strings.Contains(l, `"msg":"ops HTTP listener started"`)
	})
	var rec struct{ Address string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Address == "" {
		w.t.Fatalf("listener line %q: %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.slack.WaitConnections(ctx, 1); err != nil {
		w.t.Fatalf("the bot did not connect to Slack: %v\n%s", err, p.output())
	}
	return p, "http://" + rec.Address
}

// ask mentions the bot with text in channel C1 and returns the reply.
func (w *world) ask(text string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := len(w.slack.Posts())
	if _, err := w.slack.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + w.slack.BotUserID + "> " + text}); err != nil {
		w.t.Fatal(err)
	}
	posts, err := w.slack.WaitPosts(ctx, before+1)
	if err != nil {
		w.t.Fatalf("no reply to %q: %v", text, err)
	}
	return posts[before].Text
}

// checkLogs fails if a line of standard error is not JSON or shows a token.
func checkLogs(t *testing.T, p *proc) {
	t.Helper()
	p.mu.Lock()
	lines := append([]string(nil), p.stderr...)
	p.mu.Unlock()
	if len(lines) < 3 {
		t.Errorf("only %d log lines", len(lines))
	}
	redacted := 0
	defer func() { t.Logf("%d log lines, %d with a secret redacted", len(lines), redacted) }()
	for _, l := range lines {
		if strings.Contains(l, ops.Redacted) {
			redacted++
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Errorf("log line is not a JSON record: %q", l)
		}
		for _, tok := range []string{appToken, botToken, "opsappsecret", "opsbotsecret"} {
			if strings.Contains(l, tok) {
				t.Errorf("a token in the logs: %q", l)
			}
		}
	}
}

func TestMetricsMoveWithCommands(t *testing.T) {
	w := newWorld(t)
	start(t, "greeter", bins.greeter, nil, "--registry_address", w.reg)
	w.waitService("go.micro.srv.greeter", true)
	bot, base := w.bot()

	if code, body := testenv.Get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	testenv.Eventually(t, wait, "/readyz 200", func() bool { code, _ := testenv.Get(t, base+"/readyz"); return code == 200 })
	_, page := testenv.Get(t, base+"/metrics")
	before := testenv.Metric(page, `microbot_rpc_calls_total{service="go.micro.srv.greeter"}`)

	if got := w.ask("ping"); !strings.Contains(got, "pong") {
		t.Errorf("ping: %q", got)
	}
	if got := w.ask(`query go.micro.srv.greeter Say.Hello {"name": "John"}`); !strings.Contains(got, "Hello John") {
		t.Errorf("query: %q", got)
	}
	if got := w.ask("truncate table users"); !strings.Contains(got, "unknown command") {
		t.Errorf("unknown command: %q", got)
	}
	if got := w.ask("query go.micro.srv.nobody X.Y {}"); !strings.Contains(got, "error") {
		t.Errorf("query of nobody: %q", got)
	}

	_, page = testenv.Get(t, base+"/metrics")
	tests := []struct {
		series string
		want   float64
	}{
		{`microbot_commands_total{command="ping",outcome="ok"}`, 1},
		{`microbot_commands_total{command="query",outcome="ok"}`, 1},
		{`microbot_commands_total{command="query",outcome="error"}`, 1},
		{`microbot_commands_total{command="unknown",outcome="error"}`, 1},
		{`microbot_command_duration_seconds_count{command="query"}`, 2},
		{`microbot_rpc_calls_total{service="go.micro.srv.greeter"}`, max(before, 0) + 1},
		{`microbot_rpc_calls_total{service="unknown"}`, 1},
		{`microbot_rpc_errors_total{code="404",service="unknown"}`, 1},
	}
	for _, tt := range tests {
		if got := testenv.Metric(page, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
	if got := testenv.Metric(page, `microbot_input_connects_total{input="slack"}`); got < 1 {
		t.Errorf("microbot_input_connects_total = %v, want at least 1", got)
	}
	for _, typed := range []string{"truncate", "go.micro.srv.nobody"} { // words the page has no reason to hold
		if strings.Contains(page, typed) {
			t.Errorf("/metrics shows %q, typed by a user", typed)
		}
	}
	if testenv.Metric(page, "microbot_service_commands") != 0 {
		t.Errorf("microbot_service_commands = %v, want 0", testenv.Metric(page, "microbot_service_commands"))
	}
	if testenv.Metric(page, "go_goroutines") <= 0 {
		t.Error("no go_goroutines")
	}
	checkLogs(t, bot)
}

func TestReadyzFollowsTheSlackConnection(t *testing.T) {
	w := newWorld(t)
	bot, base := w.bot()
	testenv.Eventually(t, wait, "/readyz 200", func() bool { code, _ := testenv.Get(t, base+"/readyz"); return code == 200 })
	if _, body := testenv.Get(t, base+"/readyz"); !strings.Contains(body, "input slack: connected") || !strings.Contains(body, "registry local: reachable") {
		t.Errorf("/readyz body:\n%s", body)
	}

	// The socket drops, and Slack refuses new ones for a while (rate
	// limited): the bot is not ready, but alive.
	w.slack.RateLimit("apps.connections.open", 3, 2*time.Second)
	if n := w.slack.DropConnections(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	var body string
	testenv.Eventually(t, wait, "/readyz 503", func() bool {
		var code int
		code, body = testenv.Get(t, base+"/readyz")
		return code == 503
	})
	if !strings.Contains(body, "input slack: not connected") {
		t.Errorf("/readyz while disconnected:\n%s", body)
	}
	if code, _ := testenv.Get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz while disconnected: %d", code)
	}
	_, page := testenv.Get(t, base+"/metrics")
	if got := testenv.Metric(page, `microbot_input_connected{input="slack"}`); got != 0 {
		t.Errorf("microbot_input_connected while disconnected = %v", got)
	}

	// The rate limit passes; the bot reconnects and is ready again.
	testenv.Eventually(t, wait, "/readyz 200 again", func() bool { code, _ := testenv.Get(t, base+"/readyz"); return code == 200 })
	_, page = testenv.Get(t, base+"/metrics")
	if got := testenv.Metric(page, `microbot_input_reconnects_total{input="slack"}`); got < 1 {
		t.Errorf("microbot_input_reconnects_total = %v, want at least 1", got)
	}
	if got := testenv.Metric(page, `microbot_input_failures_total{input="slack"}`); got < 1 {
		t.Errorf("microbot_input_failures_total = %v, want at least 1", got)
	}
	if got := w.ask("ping"); !strings.Contains(got, "pong") {
		t.Errorf("ping after reconnecting: %q", got)
	}
	checkLogs(t, bot)
}

func TestSIGTERMFinishesTheRunningCommand(t *testing.T) {
	w := newWorld(t)
	sleeper := start(t, "sleepsvc", bins.sleeper, nil, "--registry_address", w.reg)
	w.waitService("go.micro.bot.sleep", true)
	bot, base := w.bot("--shutdown_timeout", "30s")
	w.waitService("go.micro.srv.bot", true)
	testenv.Eventually(t, wait, "/readyz 200", func() bool { code, _ := testenv.Get(t, base+"/readyz"); return code == 200 })
	_, page := testenv.Get(t, base+"/metrics")
	if got := testenv.Metric(page, "microbot_service_commands"); got != 1 {
		t.Errorf("microbot_service_commands = %v, want 1 (sleep)", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := w.slack.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + w.slack.BotUserID + "> sleep 3s"}); err != nil {
		t.Fatal(err)
	}
	// The command has started and takes 3 s: the signal comes while it runs.
	sleeper.waitLine(true, "the sleep command running", func(l string) bool { return l == "EXEC sleep 3s" })
	if err := bot.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Stopping: not ready any more, still alive, the command still running.
	testenv.Eventually(t, wait, "/readyz 503 while draining", func() bool {
		code, body := testenv.Get(t, base+"/readyz")
		return code == 503 && strings.Contains(body, "stopping")
	})
	if code, _ := testenv.Get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d", code)
	}

	select {
	case <-bot.done:
	case <-time.After(60 * time.Second):
		t.Fatal("microbot did not exit after SIGTERM")
	}
	if bot.err != nil {
		t.Errorf("exit: %v, want status 0", bot.err)
	}
	posts := w.slack.Posts()
	if len(posts) != 1 || !strings.Contains(posts[0].Text, "slept 3s") {
		t.Errorf("replies: %+v, want the sleep command's", posts)
	}
	w.waitService("go.micro.srv.bot", false)
	checkLogs(t, bot)
}
