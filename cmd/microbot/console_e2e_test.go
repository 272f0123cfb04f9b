package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/internal/testenv"
	"github.com/microbot/microbot/internal/tmuxtest"
)

// These tests run microbot in a real terminal (a tmux pane, see
// internal/tmuxtest), type into it as a person does, and read the screen
// as the person sees it. The services it talks to are separate processes
// in a local registry, as in e2e_test.go.

const prompt = "microbot>" // as the screen shows it: spaces at line ends trimmed

// registered waits until the services are in the world's registry, so the
// bot's first discovery finds them.
func (w *world) registered(names ...string) {
	w.t.Helper()
	reg, err := local.New(local.WithDir(w.reg))
	if err != nil {
		w.t.Fatal(err)
	}
	testenv.Eventually(w.t, 30*time.Second, strings.Join(names, ", ")+" registered", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svcs, err := reg.ListServices(ctx)
		if err != nil {
			return false
		}
		var have []string
		for _, s := range svcs {
			have = append(have, s.Name)
		}
		for _, n := range names {
			if !slices.Contains(have, n) {
				return false
			}
		}
		return true
	})
}

// console runs microbot in a terminal, with its state (the history) in
// state, and waits for its first prompt.
func (w *world) console(state string, o tmuxtest.Options, args ...string) *tmuxtest.Terminal {
	w.t.Helper()
	o.Env = append(o.Env, "XDG_STATE_HOME="+state, "MICRO_LOG_LEVEL=info")
	argv := append([]string{bins.microbot, "--registry_address", w.reg, "--shell_user", "tester", "--command_timeout", "10s"}, args...)
	term := tmuxtest.Start(w.t, o, argv...)
	if o.Stdout == "" {
		term.WaitFor("the prompt", func(lines []string) bool { return slices.Contains(lines, prompt) })
	}
	w.t.Cleanup(func() {
		if s := term.Stderr(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
			w.t.Errorf("microbot's standard error:\n%s", s)
		}
	})
	return term
}

// last returns the last lines of the screen that are not empty.
func last(lines []string, n int) []string {
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines[max(0, len(lines)-n):]
}

// endsWith waits for the last lines of the screen to be want.
func endsWith(want ...string) func([]string) bool {
	return func(lines []string) bool { return slices.Equal(last(lines, len(want)), want) }
}

func TestConsoleReplyBeforeThePrompt(t *testing.T) {
	w := newWorld(t)
	w.trial()
	w.registered("go.micro.bot.trial")
	term := w.console(t.TempDir(), tmuxtest.Options{})

	term.Type("trial sleep 1s")
	term.Keys("Enter")
	// Typed while the command runs: it waits for the next prompt.
	term.Type("ping")
	lines := term.WaitText("microbot> trial sleep 1s")
	// While the command runs no prompt is drawn under it; if it already
	// answered, the reply comes first.
	if i := slices.Index(lines, "microbot> trial sleep 1s"); i+1 < len(lines) && lines[i+1] != "" && lines[i+1] != "trial slept 1s" {
		t.Errorf("under the command line, before its reply: %q", lines[i+1])
	}
	term.WaitFor("the reply, then the prompt with the line typed ahead", endsWith(
		"microbot> trial sleep 1s",
		"trial slept 1s",
		"microbot> ping"))
	term.Keys("Enter")
	term.WaitFor("pong before the next prompt", endsWith("microbot> ping", "pong", prompt))
}

func TestConsoleCompletion(t *testing.T) {
	w := newWorld(t)
	w.greeter()
	w.trial()
	w.registered("go.micro.srv.greeter", "go.micro.bot.trial")
	term := w.console(t.TempDir(), tmuxtest.Options{})

	// A command word: the candidates are listed above the line.
	term.Type("he")
	term.Keys("Tab")
	term.WaitFor("the commands starting with he", endsWith("health  hello   help", "microbot> he"))
	term.Keys("C-u")
	// A command service's word.
	term.Type("tri")
	term.Keys("Tab")
	term.WaitFor("trial completed", endsWith("microbot> trial"))
	term.Keys("C-u")
	// A command word, a service name, an endpoint, a request skeleton.
	term.Type("quer")
	term.Keys("Tab")
	term.WaitFor("query completed", endsWith("microbot> query"))
	term.Type("go.micro.srv.gr")
	term.Keys("Tab")
	term.WaitFor("the service completed", endsWith("microbot> query go.micro.srv.greeter"))
	term.Type("Say.H")
	term.Keys("Tab")
	term.WaitFor("the endpoint completed", endsWith("microbot> query go.micro.srv.greeter Say.Hello"))
	term.Keys("Tab")
	term.WaitFor("the request skeleton", endsWith(`microbot> query go.micro.srv.greeter Say.Hello {"name": ""}`))
	// Into the quotes, and run it.
	term.Keys("Left", "Left", "Left")
	term.Type("John")
	term.Keys("Enter")
	term.WaitFor("the greeter's answer", endsWith(
		`microbot> query go.micro.srv.greeter Say.Hello {"name": "John"}`,
		"{",
		`  "msg": "Hello John"`,
		"}",
		prompt))
	// get service completes service names too.
	term.Type("get service go.micro.srv.g")
	term.Keys("Tab")
	term.WaitFor("get service completed", endsWith("microbot> get service go.micro.srv.greeter"))
}

func TestConsoleHistory(t *testing.T) {
	w := newWorld(t)
	w.greeter()
	w.registered("go.micro.srv.greeter")
	state := t.TempDir()
	term := w.console(state, tmuxtest.Options{})
	term.Type("ping")
	term.Keys("Enter")
	term.WaitFor("pong", endsWith("pong", prompt))
	term.Type(`query go.micro.srv.greeter Say.Hello {"name": "x", "password": "hunter2"}`)
	term.Keys("Enter")
	term.WaitFor("the greeter's answer", endsWith(`  "msg": "Hello x"`, "}", prompt))
	term.Keys("C-d")
	if status := term.WaitExit(); status != 0 {
		t.Fatalf("microbot exited with status %d after Ctrl-D", status)
	}
	term.WaitFor("bye", func(lines []string) bool { return slices.Contains(lines, "microbot> bye") })

	path := filepath.Join(state, "microbot", "history")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("history file mode %v, want 0600", st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "ping\n" {
		t.Errorf("history file %q, want only ping: the line with a password must not be kept", data)
	}

	// A new run finds it.
	term = w.console(state, tmuxtest.Options{})
	term.Keys("Up")
	term.WaitFor("the line of the last run", endsWith("microbot> ping"))
	term.Keys("Enter")
	term.WaitFor("pong", endsWith("microbot> ping", "pong", prompt))
}

func TestConsoleColours(t *testing.T) {
	w := newWorld(t)
	for _, tt := range []struct {
		name  string
		env   []string
		color bool
	}{
		{"terminal", nil, true},
		{"NO_COLOR", []string{"NO_COLOR=1"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{t: t, reg: w.reg}
			term := w.console(t.TempDir(), tmuxtest.Options{Env: tt.env})
			term.Type("nosuch")
			term.Keys("Enter")
			term.WaitFor("the error", endsWith(`unknown command "nosuch" — type "help" for the list`, prompt))
			term.Type("ping")
			term.Keys("Enter")
			term.WaitFor("pong", endsWith("pong", prompt))
			screen := term.ScreenEscapes()
			red := strings.Contains(screen, "\x1b[31munknown command")
			if red != tt.color {
				t.Errorf("error in red: %v, want %v; screen:\n%q", red, tt.color, screen)
			}
			if !tt.color && strings.Contains(screen, "\x1b[") {
				t.Errorf("escape codes on the screen with %v:\n%q", tt.env, screen)
			}
			if strings.Contains(screen, "\x1b[31mpong") {
				t.Errorf("a reply that is no error in red:\n%q", screen)
			}
		})
	}
}

func TestConsoleOutputNotATerminal(t *testing.T) {
	w := newWorld(t)
	state := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	// Typed on a terminal, answered into a file: plain lines, as in a pipe.
	term := w.console(state, tmuxtest.Options{Stdout: out})
	for _, line := range []string{"nosuch", "ping"} {
		term.Type(line)
		term.Keys("Enter")
	}
	testenv.Eventually(t, tmuxtest.Timeout, "the replies in the file", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "pong\n")
	})
	term.Keys("C-d")
	if status := term.WaitExit(); status != 0 {
		t.Errorf("microbot exited with status %d at the end of its input", status)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "unknown command \"nosuch\" — type \"help\" for the list\npong\n"; got != want {
		t.Errorf("output %q, want %q (replies only, no escape codes)", got, want)
	}
	if _, err := os.Stat(filepath.Join(state, "microbot")); err == nil {
		t.Error("plain lines wrote a history")
	}
}

// A log line written while a line is half typed, with standard error on
// the console's terminal, is printed above the prompt, and the half-typed
// line is drawn again intact below it (log lines once landed inside the
// prompt). The log stays text, as standard error is a terminal.
func TestConsoleLogAboveThePrompt(t *testing.T) {
	w := newWorld(t)
	race := t.TempDir()
	term := w.console(t.TempDir(), tmuxtest.Options{Width: 220, Height: 30, StderrOnTerminal: true,
		Env: []string{"GORACE=log_path=" + filepath.Join(race, "report")}})
	term.Type("hel")
	term.WaitFor("the half-typed line", endsWith("microbot> hel"))
	// A command service comes: the bot logs it at info level.
	w.trial()
	logged := func(l string) bool {
		return strings.Contains(l, `level=INFO msg="command found"`) && strings.Contains(l, "command=trial")
	}
	term.WaitFor("the log line above the prompt, the half-typed line below", func(lines []string) bool {
		lines = last(lines, len(lines))
		at := slices.IndexFunc(lines, logged)
		prompts := 0
		for _, l := range lines {
			if strings.HasPrefix(l, prompt) {
				prompts++
			}
		}
		return at >= 0 && at < len(lines)-1 && prompts == 1 && lines[len(lines)-1] == "microbot> hel"
	})
	term.Type("p")
	term.Keys("Enter")
	term.WaitText("help - Displays help for all known commands")
	term.WaitFor("the next prompt", endsWith(prompt))
	screen := strings.Join(term.Screen(), "\n")
	if strings.Contains(screen, "DATA RACE") || strings.Contains(screen, "panic:") {
		t.Errorf("microbot's standard error:\n%s", screen)
	}
	if reports, _ := filepath.Glob(filepath.Join(race, "report*")); len(reports) > 0 {
		b, _ := os.ReadFile(reports[0])
		t.Errorf("race report:\n%s", b)
	}
}
