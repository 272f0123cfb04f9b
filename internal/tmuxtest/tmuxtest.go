// Package tmuxtest runs a program in a real terminal for tests: a tmux pane
// of a private tmux server, which the test types into (keys, as a person
// does) and whose screen it reads as a person sees it, escape sequences
// already interpreted (or, with ScreenEscapes, the colours kept).
//
// The tmux binary is found on PATH, or at $MICROBOT_TMUX. When it is
// missing the test fails under CI=true and is skipped elsewhere
// (internal/testenv); .ci/setup.d/tmux.sh installs it.
package tmuxtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// Timeout bounds every wait for the screen.
const Timeout = 30 * time.Second

// Terminal is a tmux pane running one program.
type Terminal struct {
	t      testing.TB
	tmux   string
	dir    string // the server's socket and configuration
	stderr string // the program's standard error

	server       *exec.Cmd     // the tmux server, in the foreground (tmux -D)
	serverExited chan struct{} // closed once it has exited
}

// Options configure Start.
type Options struct {
	// Width and Height of the terminal (default 120×30).
	Width, Height int
	// Env is added to the program's environment ("NAME=value").
	Env []string
	// Stdout, if set, is a file the program's standard output goes to
	// instead of the terminal (its input stays the terminal).
	Stdout string
	// StderrOnTerminal leaves the program's standard error on the
	// terminal, as when a person runs it (it goes to a file otherwise, for
	// Stderr); Stderr then returns "".
	StderrOnTerminal bool
}

// Start runs argv in a new terminal. The test's cleanup kills the program
// and the tmux server, and reports the program's standard error if the
// test failed.
func Start(t testing.TB, o Options, argv ...string) *Terminal {
	t.Helper()
	bin := os.Getenv("MICROBOT_TMUX")
	if bin == "" {
		bin = "tmux"
	}
	path, err := exec.LookPath(bin)
	testenv.Require(t, "tmux", err)
	if o.Width == 0 {
		o.Width, o.Height = 120, 30
	}
	// A short directory: the socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "tmux")
	if err != nil {
		t.Fatal(err)
	}
	tm := &Terminal{t: t, tmux: path, dir: dir, stderr: filepath.Join(dir, "stderr")}
	conf := filepath.Join(dir, "tmux.conf")
	// The pane stays when the program ends, so its last screen and status
	// can be read.
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The shell stays to write the program's exit status (tmux may not
	// learn it when the terminal closes first).
	out := ""
	if o.Stdout != "" {
		out = " >" + shellQuote(o.Stdout)
	}
	errOut := ` 2>"$0"`
	if o.StderrOnTerminal {
		errOut = ""
	}
	redirect := `"$@"` + errOut + out + `; echo $? >"$0.tmp" && mv "$0.tmp" "$0.status"`
	t.Cleanup(tm.stop)
	tm.startServer(conf)
	args := []string{"new-session", "-d", "-s", "test", "-x", strconv.Itoa(o.Width), "-y", strconv.Itoa(o.Height)}
	for _, e := range o.Env {
		args = append(args, "-e", e)
	}
	args = append(args, "--", "/bin/sh", "-c", redirect, tm.stderr)
	args = append(args, argv...)
	if out, err := tm.run(args...); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	return tm
}

// startServer starts the terminal's tmux server as a child of the test
// process that dies with it (testenv.StartCommand): in the foreground
// (-D), since a server that daemonizes is nobody's child and would outlive
// a killed test. It waits until the server answers.
func (tm *Terminal) startServer(conf string) {
	tm.t.Helper()
	log, err := os.Create(filepath.Join(tm.dir, "server.log"))
	if err != nil {
		tm.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(tm.tmux, "-D", "-f", conf, "-S", filepath.Join(tm.dir, "sock"))
	cmd.Env = append(os.Environ(), "TMUX=") // never the tmux the tests may run in
	cmd.Stdout, cmd.Stderr = log, log
	if err := testenv.StartCommand(cmd); err != nil {
		tm.t.Fatalf("starting tmux: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tm.server, tm.serverExited = cmd, exited
	// list-sessions never starts a server: it fails until this one listens.
	deadline := time.Now().Add(Timeout)
	for {
		out, err := tm.run("list-sessions")
		if err == nil {
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(log.Name())
			tm.t.Fatalf("the tmux server exited at start-up: %s", b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the tmux server did not answer within %v: %v: %s", Timeout, err, out)
		}
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// run runs a tmux command on the terminal's server.
func (tm *Terminal) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tm.tmux, append([]string{"-S", filepath.Join(tm.dir, "sock")}, args...)...)
	cmd.Env = append(os.Environ(), "TMUX=") // never the tmux the tests may run in
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (tm *Terminal) must(args ...string) string {
	tm.t.Helper()
	out, err := tm.run(args...)
	if err != nil {
		tm.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// stop kills the program (it may ignore the hang-up) and the server.
func (tm *Terminal) stop() {
	// The pane's shell leads a process group of its own, the program in it.
	if pid, err := strconv.Atoi(strings.TrimSpace(tm.display("#{pane_pid}"))); err == nil && pid > 0 {
		if _, ended := tm.status(); !ended {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	tm.run("kill-server")
	if tm.server != nil {
		select {
		case <-tm.serverExited:
		case <-time.After(Timeout):
			tm.server.Process.Kill()
			<-tm.serverExited
		}
	}
	if tm.t.Failed() {
		if b, err := os.ReadFile(tm.stderr); err == nil && len(b) > 0 {
			tm.t.Logf("program's standard error:\n%s", b)
		}
	}
	os.RemoveAll(tm.dir)
}

func (tm *Terminal) display(format string) string {
	out, _ := tm.run("display-message", "-p", "-t", "test", format)
	return out
}

// status returns the program's exit status once it ended.
func (tm *Terminal) status() (int, bool) {
	b, err := os.ReadFile(tm.stderr + ".status")
	if err != nil {
		return 0, false
	}
	st, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return st, err == nil
}

// Type types text, character by character as given (no key names).
func (tm *Terminal) Type(text string) {
	tm.t.Helper()
	tm.must("send-keys", "-t", "test", "-l", "--", text)
}

// Keys presses keys by their tmux names: Enter, Tab, Up, Left, C-c, C-d...
func (tm *Terminal) Keys(keys ...string) {
	tm.t.Helper()
	tm.must(append([]string{"send-keys", "-t", "test"}, keys...)...)
}

// Screen returns the lines of the screen as shown, without the spaces at
// their ends.
func (tm *Terminal) Screen() []string {
	tm.t.Helper()
	out := tm.must("capture-pane", "-p", "-t", "test")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return lines
}

// ScreenEscapes returns the screen with the escape sequences of its
// colours and attributes.
func (tm *Terminal) ScreenEscapes() string {
	tm.t.Helper()
	return tm.must("capture-pane", "-p", "-e", "-t", "test")
}

// WaitFor waits until cond holds for the screen's lines, and returns them;
// the test fails after Timeout, showing the screen. what says what is
// awaited.
func (tm *Terminal) WaitFor(what string, cond func(lines []string) bool) []string {
	tm.t.Helper()
	var lines []string
	deadline := time.Now().Add(Timeout)
	for {
		lines = tm.Screen()
		if cond(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out after %v waiting until the screen shows %s; it shows:\n%s", Timeout, what, strings.Join(lines, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitText waits until some line of the screen contains s.
func (tm *Terminal) WaitText(s string) []string {
	tm.t.Helper()
	return tm.WaitFor(fmt.Sprintf("%q", s), func(lines []string) bool {
		for _, l := range lines {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	})
}

// WaitExit waits until the program ends and returns its exit status (as
// the shell gives it: 128+n for a program killed by signal n).
func (tm *Terminal) WaitExit() int {
	tm.t.Helper()
	var status int
	deadline := time.Now().Add(Timeout)
	for {
		st, ended := tm.status()
		if ended {
			status = st
			break
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the program did not end within %v; the screen shows:\n%s", Timeout, strings.Join(tm.Screen(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return status
}

// Stderr returns what the program wrote to its standard error so far.
func (tm *Terminal) Stderr() string {
	b, _ := os.ReadFile(tm.stderr)
	return string(b)
}
