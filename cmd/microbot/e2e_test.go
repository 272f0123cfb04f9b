package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// These tests run microbot, the greeter, the echo command service and a
// misbehaving test command service (commandsvc/internal/testsvc) as
// separate processes that meet in a local registry in a temporary
// directory. microbot's console input is driven through pipes: after each
// line the test sends a marker line, which the bot answers with "unknown
// command", and collects the output up to that answer (replies come out in
// the order of the lines).

// bins holds the binaries the package's tests run, built once.
var bins struct {
	microbot, greeter, echo, testsvc string
}

func TestMain(m *testing.M) {
	testenv.Main(m, func() {
		if benchBins.microbot != "" {
			os.RemoveAll(filepath.Dir(benchBins.microbot))
		}
	})
}

// build builds the binaries (with -race when the tests run with it, so a
// race in a child process fails the test too).
func build(t testing.TB) {
	t.Helper()
	bins.microbot = testenv.Build(t, "github.com/microbot/microbot/cmd/microbot")
	bins.greeter = testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	bins.echo = testenv.Build(t, "github.com/microbot/microbot/examples/echo")
	bins.testsvc = testenv.Build(t, "github.com/microbot/microbot/commandsvc/internal/testsvc")
}

// proc is a child process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	done   chan struct{}
	err    error // the exit, once done is closed
}

// start runs bin with args; the test's cleanup kills it if still running.
func start(t testing.TB, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), stderr: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "MICRO_LOG_LEVEL=info")
	if err := testenv.StartCommand(p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM", p.name)
	}
}

// world is a registry directory with services in it.
type world struct {
	t   *testing.T
	reg string
}

func newWorld(t *testing.T) *world {
	build(t)
	return &world{t: t, reg: t.TempDir()}
}

func (w *world) greeter() *proc {
	return start(w.t, "greeter", bins.greeter, "--registry_address", w.reg)
}

func (w *world) echo() *proc {
	return start(w.t, "echo", bins.echo, "--registry_address", w.reg)
}

func (w *world) trial() *proc {
	return start(w.t, "trial", bins.testsvc, "--registry_address", w.reg, "--server_name", "go.micro.bot.trial")
}

// console is microbot on a pipe.
type console struct {
	t     *testing.T
	p     *proc
	in    io.WriteCloser
	lines chan string
	n     int
}

func (w *world) bot(args ...string) *console {
	w.t.Helper()
	args = append([]string{"--registry_address", w.reg, "--shell_user", "tester", "--command_timeout", "3s"}, args...)
	p := &proc{name: "microbot", cmd: exec.Command(bins.microbot, args...), stderr: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "MICRO_LOG_LEVEL=info")
	in, err := p.cmd.StdinPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := testenv.StartCommand(p.cmd); err != nil {
		w.t.Fatal(err)
	}
	c := &console{t: w.t, p: p, in: in, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	w.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if w.t.Failed() {
			w.t.Logf("microbot stderr:\n%s", p.stderr.String())
		}
	})
	return c
}

// ask sends a line and returns the bot's reply.
func (c *console) ask(line string) string {
	c.t.Helper()
	c.n++
	mark := fmt.Sprintf("@@mark-%d", c.n)
	if _, err := io.WriteString(c.in, line+"\n"+mark+"\n"); err != nil {
		c.t.Fatalf("writing to microbot: %v", err)
	}
	var got []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("microbot ended while answering %q; got %q", line, got)
			}
			if strings.Contains(l, `"`+mark+`"`) {
				return strings.Join(got, "\n")
			}
			if strings.Contains(l, "\x1b") {
				c.t.Errorf("an escape code in piped output: %q", l)
			}
			got = append(got, l)
		case <-timeout:
			c.t.Fatalf("no reply to %q within 30s; got %q", line, got)
		}
	}
}

// until asks line until the reply satisfies ok (up to 30 s) and returns it.
func (c *console) until(line string, ok func(string) bool) string {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep := c.ask(line)
		if ok(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%q: still %q after 30s", line, rep)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// close ends the console's input and checks microbot exits with status 0.
func (c *console) close() {
	c.t.Helper()
	c.in.Close()
	select {
	case <-c.p.done:
	case <-time.After(30 * time.Second):
		c.t.Fatal("microbot did not exit at the end of its input")
	}
	if c.p.err != nil {
		c.t.Errorf("microbot exited with %v; stderr:\n%s", c.p.err, c.p.stderr.String())
	}
}

func contains(subs ...string) func(string) bool {
	return func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	}
}

func lacks(sub string) func(string) bool {
	return func(s string) bool { return !strings.Contains(s, sub) }
}

func expect(t *testing.T, what, got string, ok func(string) bool) {
	t.Helper()
	if !ok(got) {
		t.Errorf("%s: unexpected reply:\n%s", what, got)
	}
}

const (
	echoHelp    = "echo - This is an example bot command as a micro service which echos the message"
	builtinEcho = "echo [text] - Returns the [text]"
	trialHelp   = "trial [ok|fail|hang|sleep|steps|await|late|crash|panic] [words] - misbehaves on demand (tests only)"
)

func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	w.greeter()
	echo := w.echo()
	trial := w.trial()
	c := w.bot()

	c.until("help", contains(echoHelp, trialHelp))
	help := c.ask("help")
	expect(t, "help", help, func(s string) bool {
		return !strings.Contains(s, builtinEcho) && strings.Contains(s, "list services - Returns a list of registered services") &&
			strings.Count(s, "query [service]") == 1 && strings.Contains(s, "(alias: call)")
	})

	c.until("list services", contains("go.micro.srv.greeter", "go.micro.bot.echo", "go.micro.bot.trial", "go.micro.srv.bot"))
	expect(t, "get service", c.ask("get service go.micro.srv.greeter"), contains(
		"service go.micro.srv.greeter", "version 1.0.0", "go.micro.srv.greeter-", "127.0.0.1:",
		"Endpoint: Say.Hello", "Request: {\n  name string\n}", "Response: {\n  msg string\n}"))
	if got := c.ask(`query go.micro.srv.greeter Say.Hello {"name": "John"}`); got != "{\n  \"msg\": \"Hello John\"\n}" {
		t.Errorf("query: %q", got)
	}
	if got := c.ask(`call  go.micro.srv.greeter  Say.Hello  {"name":   "John  Smith"}`); got != "{\n  \"msg\": \"Hello John  Smith\"\n}" {
		t.Errorf("call with spaces: %q", got)
	}
	expect(t, "health", c.ask("health go.micro.srv.greeter"), contains("NODE", "STATUS", "go.micro.srv.greeter-", " ok"))
	if got := c.ask("echo hi there"); got != "echo hi there" { // the service repeats the command word
		t.Errorf("echo with the service up: %q", got)
	}
	if got := c.ask("trial ok a b"); got != "trial says: a b" {
		t.Errorf("trial ok: %q", got)
	}

	// The echo service goes: the built-in echo is back.
	echo.stop(t)
	c.until("echo hi there", func(s string) bool { return s == "hi there" })
	expect(t, "help without the echo service", c.ask("help"), func(s string) bool {
		return strings.Contains(s, builtinEcho) && !strings.Contains(s, echoHelp)
	})
	// The trial service goes: trial is unknown and gone from help.
	trial.stop(t)
	c.until("trial ok x", contains(`unknown command "trial"`))
	expect(t, "help without trial", c.ask("help"), lacks("trial"))

	// Both come back.
	w.echo()
	w.trial()
	c.until("echo hi there", func(s string) bool { return s == "echo hi there" })
	c.until("trial ok back", func(s string) bool { return s == "trial says: back" })
	expect(t, "help with both back", c.ask("help"), contains(echoHelp, trialHelp))
	c.close()
}

func TestBadInput(t *testing.T) {
	w := newWorld(t)
	w.greeter()
	trial := w.trial()
	c := w.bot()
	c.until("help", contains(trialHelp))
	c.until("list services", contains("go.micro.srv.greeter"))

	tests := []struct {
		line string
		ok   func(string) bool
	}{
		{`query go.micro.srv.greeter Say.Hello {"name": John}`, contains("error: request: invalid JSON at character 10", "nothing was sent")},
		{`query go.micro.srv.greeter Say.Hello {"name": "John"`, contains("error: request: invalid JSON: it ends too early")},
		{`query go.micro.srv.nope Say.Hello {}`, contains("error: ", "go.micro.srv.nope", "not found")},
		{`query go.micro.srv.greeter Say.Nope {}`, contains("error: ", "Say.Nope")},
		{"trial fail", func(s string) bool { return s == "error: failed on purpose" }},
		{"trial hang", func(s string) bool { return s == "error: trial timed out after 3s" }},
		{"trial panic", contains("error: ", "go.micro.bot.trial")},
		{strings.Repeat("x", 1<<20), contains("error: message too long (1048576 bytes")},
		{"\x00\xff\xfe\x01garbage", contains(`unknown command "\x00\xff\xfe\x01garbage"`)},
		{"get service", contains("error: which service? (usage: get service [name])")},
		{"list", contains(`did you mean "list services"?`)},
		{"trial crash", contains("error: command service go.micro.bot.trial failed")},
	}
	for _, tt := range tests {
		name := tt.line
		if len(name) > 60 {
			name = name[:60] + "..."
		}
		expect(t, name, c.ask(tt.line), tt.ok)
		if got := c.ask("ping"); got != "pong" {
			t.Fatalf("after %q the bot answered ping with %q", name, got)
		}
	}
	// The crashed service really exited, and the crash was not retried.
	select {
	case <-trial.done:
		var ee *exec.ExitError
		if !errors.As(trial.err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("trial exited with %v, want status 3", trial.err)
		}
	case <-time.After(30 * time.Second):
		t.Error("trial did not crash")
	}
	c.close()
}

func TestExec(t *testing.T) {
	w := newWorld(t)
	w.greeter()
	w.trial()
	// run runs microbot with args, run exec with the command in args.
	runArgs := func(args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command(bins.microbot, args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	run := func(args ...string) (stdout, stderr string, code int) {
		return runArgs(append([]string{"exec", "--registry_address", w.reg}, args...)...)
	}
	// The services may take a moment to register: poll.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, code := run("trial ok from exec")
		if code == 0 && out == "trial says: from exec\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec trial: %q, status %d", out, code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, _, code := run(`query`, `go.micro.srv.greeter`, `Say.Hello`, `{"name": "Exec"}`); code != 0 || out != "{\n  \"msg\": \"Hello Exec\"\n}\n" {
		t.Errorf("exec query: %q, status %d", out, code)
	}
	// Flags before exec count as well (they were once ignored: this asked
	// the default registry).
	if out, _, code := runArgs("--registry_address", w.reg, "exec", "query", "go.micro.srv.greeter", "Say.Hello", `{"name": "Before"}`); code != 0 || out != "{\n  \"msg\": \"Hello Before\"\n}\n" {
		t.Errorf("exec query, flags before exec: %q, status %d", out, code)
	}
	if out, errOut, code := run("get service go.micro.srv.nope"); code != 1 || out != "" || !strings.Contains(errOut, `error: service "go.micro.srv.nope" not found`) {
		t.Errorf("exec of a failing command: stdout %q, stderr %q, status %d", out, errOut, code)
	}
	if _, errOut, code := run(); code != 2 || !strings.Contains(errOut, "which command?") {
		t.Errorf("exec without a command: stderr %q, status %d", errOut, code)
	}
}

func TestZeroFlagsConsole(t *testing.T) {
	build(t)
	// No flag at all but a private registry directory through the
	// environment, so the test does not touch the host's default one.
	cmd := exec.Command(bins.microbot)
	cmd.Env = append(os.Environ(), "MICRO_REGISTRY_ADDRESS="+t.TempDir())
	cmd.Stdin = strings.NewReader("help\nping\nlist services\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("microbot: %v\n%s", err, errOut.String())
	}
	expect(t, "console", out.String(), contains("help - Displays help for all known commands", "\npong\n", "go.micro.srv.bot"))
	expect(t, "console", out.String(), lacks("\x1b"))
}
