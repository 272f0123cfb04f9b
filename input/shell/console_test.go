package shell

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
)

// These tests run the line editor on a keyboard and a screen in memory
// (WithTerminal); cmd/microbot's tests run it in a real terminal.

// keyboard is what a person types: each Type is read whole, in order.
type keyboard struct {
	ch   chan string
	rest string
}

func (k *keyboard) Read(p []byte) (int, error) {
	if k.rest == "" {
		s, ok := <-k.ch
		if !ok {
			return 0, io.EOF
		}
		k.rest = s
	}
	n := copy(p, k.rest)
	k.rest = k.rest[n:]
	return n, nil
}

// screenTerm is a console on a keyboard and a screen.
type screenTerm struct {
	t      *testing.T
	kb     *keyboard
	screen *testenv.Buffer
	shell  *Shell
	conn   input.Conn
}

func newTerm(t *testing.T, opts ...Option) *screenTerm {
	t.Helper()
	return newTermWith(t, Config{UserID: "ann", UserName: "Ann"}, opts...)
}

// newTermWith is newTerm with the console configured by cfg.
func newTermWith(t *testing.T, cfg Config, opts ...Option) *screenTerm {
	t.Helper()
	kb := &keyboard{ch: make(chan string, 100)}
	screen := &testenv.Buffer{}
	s, err := New(cfg, append([]Option{WithTerminal(struct {
		io.Reader
		io.Writer
	}{kb, screen}), WithColor(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &screenTerm{t: t, kb: kb, screen: screen, shell: s, conn: conn}
}

func (tm *screenTerm) typ(keys string) { tm.kb.ch <- keys }

// wait waits until the screen shows what (the bytes written, escapes
// included) after the part already seen, and returns where it ends.
func (tm *screenTerm) wait(from int, what string) int {
	tm.t.Helper()
	end := -1
	testenv.Eventually(tm.t, 10*time.Second, "the screen shows "+what, func() bool {
		s := tm.screen.String()
		if i := strings.Index(s[from:], what); i >= 0 {
			end = from + i + len(what)
			return true
		}
		return false
	})
	return end
}

func (tm *screenTerm) recv() *input.Event {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := tm.conn.Recv(ctx)
	if err != nil {
		tm.t.Fatalf("Recv: %v", err)
	}
	return ev
}

func (tm *screenTerm) reply(ev *input.Event, text string, isErr bool) {
	tm.conn.Send(context.Background(), ev, &input.Reply{Text: text, Error: isErr})
}

const prompt = "microbot> "

func TestTerminalReplyBeforeThePrompt(t *testing.T) {
	tm := newTerm(t)
	at := tm.wait(0, prompt)
	tm.typ("ping\r")
	ev := tm.recv()
	if ev.Text != "ping" || ev.UserID != "ann" || !ev.Addressed {
		t.Fatalf("event %+v", ev)
	}
	tm.reply(ev, "pong", false)
	end := tm.wait(at, "pong\r\n"+prompt)
	if got := tm.screen.String()[at:end]; got != "ping\r\npong\r\n"+prompt {
		t.Errorf("screen after the prompt: %q; want the line, the reply, then the next prompt", got)
	}
}

func TestTerminalPrintsAboveThePrompt(t *testing.T) {
	tm := newTerm(t)
	tm.wait(0, prompt)
	tm.typ("half")
	at := tm.wait(0, prompt+"half")
	// Output that answers no line: above the prompt, the line kept.
	tm.reply(&input.Event{Text: "elsewhere"}, "an event\nof two lines", false)
	end := tm.wait(at, "an event\r\nof two lines\r\n"+prompt+"half")
	if got := tm.screen.String()[at:end]; !strings.HasPrefix(got, "\x1b[") || !strings.Contains(got, "\x1b[Kan event") {
		t.Errorf("the prompt line was not cleared before the event: %q", got)
	}
	tm.typ("way\r")
	if ev := tm.recv(); ev.Text != "halfway" {
		t.Errorf("line %q, want halfway", ev.Text)
	}
}

// A post (a notification) is printed above the prompt like a late reply,
// red when it is critical, and the half-typed line is kept.
func TestTerminalPostAboveThePrompt(t *testing.T) {
	tm := newTerm(t, WithColor(true))
	tm.wait(0, prompt)
	tm.typ("half")
	at := tm.wait(0, prompt+"half")
	if _, err := tm.shell.Post(context.Background(), &input.Post{Room: Room, Title: "db-1 down", Severity: input.SeverityCritical}); err != nil {
		t.Fatal(err)
	}
	end := tm.wait(at, "\x1b[31m[CRITICAL] db-1 down\x1b[0m\r\n"+prompt+"half")
	if got := tm.screen.String()[at:end]; !strings.Contains(got, "\x1b[K") {
		t.Errorf("the prompt line was not cleared before the post: %q", got)
	}
	tm.typ("way\r")
	if ev := tm.recv(); ev.Text != "halfway" {
		t.Errorf("line %q, want halfway", ev.Text)
	}
}

func TestTerminalErrorsInColour(t *testing.T) {
	for _, color := range []bool{true, false} {
		tm := newTerm(t, WithColor(color))
		at := tm.wait(0, prompt)
		tm.typ("nosuch\r")
		ev := tm.recv()
		tm.reply(ev, "error: no such command", true)
		end := tm.wait(at, prompt)
		got := tm.screen.String()[at:end]
		red := strings.Contains(got, "\x1b[31merror: no such command\x1b[0m")
		if red != color || (!color && strings.Contains(got, "\x1b[3")) {
			t.Errorf("colour %v: %q", color, got)
		}
	}
}

func TestTerminalShowsControlCharacters(t *testing.T) {
	tm := newTerm(t)
	at := tm.wait(0, prompt)
	tm.reply(&input.Event{}, "a\x1b[2Jb\x07\tc\r\nd\u009b", false)
	tm.wait(at, "a\\x1b[2Jb\\a\tc\r\nd\\u009b\r\n") // input.Printable's escapes
}

func TestTerminalCtrlC(t *testing.T) {
	tm := newTerm(t)
	tm.wait(0, prompt)
	tm.typ("abc\x03")
	tm.typ("def\r")
	if ev := tm.recv(); ev.Text != "def" {
		t.Errorf("line after Ctrl-C %q, want def", ev.Text)
	} else {
		tm.reply(ev, "ok", false)
	}
	at := tm.wait(0, "ok\r\n"+prompt)
	tm.typ("\x03")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tm.conn.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after Ctrl-C on an empty line: %v, want io.EOF", err)
	}
	tm.wait(at, "bye\r\n")
}

func TestTerminalCtrlD(t *testing.T) {
	tm := newTerm(t)
	tm.wait(0, prompt)
	tm.typ("\x04")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tm.conn.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after Ctrl-D: %v, want io.EOF", err)
	}
}

// completer completes from a fixed list of words, the word before the
// cursor, and remembers who asked.
type completer struct {
	words []string
	user  chan string
}

func (c completer) Complete(ctx context.Context, ev *input.Event) (int, []string) {
	if c.user != nil {
		c.user <- ev.UserID
	}
	from := strings.LastIndexByte(ev.Text, ' ') + 1
	var out []string
	for _, w := range c.words {
		if strings.HasPrefix(w, ev.Text[from:]) {
			out = append(out, w)
		}
	}
	return from, out
}

func TestTerminalTabCompletes(t *testing.T) {
	user := make(chan string, 10)
	tm := newTerm(t, WithCompleter(completer{words: []string{"health", "hello", "help", "query", "go.micro.srv.greeter", "go.micro.srv.geo"}, user: user}))
	at := tm.wait(0, prompt)
	tm.typ("quer\t")
	at = tm.wait(at, "query ")
	if u := <-user; u != "ann" {
		t.Errorf("completion asked for %q, want the console user ann", u)
	}
	tm.typ("go\t")
	at = tm.wait(at, ".micro.srv.g")
	tm.typ("\t") // nothing to add: the candidates are listed above the line
	tm.wait(at, "go.micro.srv.greeter  go.micro.srv.geo\r\n"+prompt+"query go.micro.srv.g")
	tm.typ("r\tx\r")
	if ev := tm.recv(); ev.Text != "query go.micro.srv.greeter x" {
		t.Errorf("line %q", ev.Text)
	}
}

// stuck never answers.
type stuck struct{}

func (stuck) Complete(ctx context.Context, ev *input.Event) (int, []string) { select {} }

func TestTerminalSlowCompleterDoesNotFreezeTheLine(t *testing.T) {
	tm := newTerm(t, WithCompleter(stuck{}), WithCompleteTimeout(20*time.Millisecond))
	tm.wait(0, prompt)
	tm.typ("ab\t")
	tm.typ("c\r")
	if ev := tm.recv(); ev.Text != "abc" {
		t.Errorf("line %q, want abc", ev.Text)
	}
}

// panicky panics.
type panicky struct{}

func (panicky) Complete(ctx context.Context, ev *input.Event) (int, []string) { panic("broken") }

func TestTerminalBrokenCompleter(t *testing.T) {
	tm := newTerm(t, WithCompleter(panicky{}))
	tm.wait(0, prompt)
	tm.typ("ab\tc\r")
	if ev := tm.recv(); ev.Text != "abc" {
		t.Errorf("line %q, want abc", ev.Text)
	}
}

func TestHistorySurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "microbot", "history")
	secret := func(l string) bool { return strings.Contains(l, "password") }
	tm := newTermWith(t, Config{UserID: "ann", UserName: "Ann", History: path}, WithSecretLines(secret))
	at := tm.wait(0, prompt)
	for _, line := range []string{"ping", "ping", "login --password=hunter2", "list services  "} {
		tm.typ(line + "\r")
		ev := tm.recv()
		tm.reply(ev, "ok", false)
		at = tm.wait(at, "ok\r\n"+prompt)
	}
	// Up goes through this session's lines, the secret one included.
	tm.typ("\x1b[A\x1b[A")
	tm.wait(at, "login --password=hunter2")
	tm.typ("\x04\x04") // Ctrl-D deletes nothing at the end of a line
	tm.typ("\x15\x04") // Ctrl-U empties it, Ctrl-D leaves
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tm.conn.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after Ctrl-D: %v", err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(data); got != "ping\nlist services\n" {
		t.Errorf("history file %q", got)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s: mode %v, want no access for others", p, perm)
		}
	}

	tm = newTermWith(t, Config{UserID: "ann", UserName: "Ann", History: path}, WithSecretLines(secret))
	at = tm.wait(0, prompt)
	tm.typ("\x1b[A")
	tm.wait(at, "list services")
	tm.typ("\x1b[A\r")
	if ev := tm.recv(); ev.Text != "ping" {
		t.Errorf("second Up in a new session: %q, want ping", ev.Text)
	}
}

func TestHistoryUnusableFile(t *testing.T) {
	dir := t.TempDir() // a directory is no history file
	tm := newTermWith(t, Config{UserID: "ann", UserName: "Ann", History: dir})
	at := tm.wait(0, "the history is kept for this session only")
	tm.typ("ping\r")
	ev := tm.recv()
	tm.reply(ev, "pong", false)
	tm.wait(at, "pong\r\n"+prompt)
	tm.typ("\x1b[A\r")
	if ev := tm.recv(); ev.Text != "ping" {
		t.Errorf("Up: %q, want ping", ev.Text)
	}
}

func TestHistoryBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	const max = 10
	h, err := openHistory(path, max, func(l string) bool { return strings.HasPrefix(l, "secret") })
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for i := range 5*max + 3 {
		last = strings.Repeat("x", i%3) + string(rune('a'+i%26)) + strings.Repeat("y", i)
		h.Add(last)
		h.Add("secret " + string(rune('a'+i%26)))
		h.Add("")
		h.Add(strings.Repeat("l", maxHistoryLine+1))
	}
	if h.Len() != max {
		t.Errorf("%d lines in memory, want %d", h.Len(), max)
	}
	lines := func() []string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	if got := lines(); len(got) > 2*max {
		t.Errorf("file holds %d lines, want at most %d", len(got), 2*max)
	}
	h2, err := openHistory(path, max, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Len() != max || h2.At(0) != last {
		t.Errorf("reopened: %d lines, last %q; want %d, %q", h2.Len(), h2.At(0), max, last)
	}
	for i := range h2.Len() {
		if strings.HasPrefix(h2.At(i), "secret") || len(h2.At(i)) > maxHistoryLine {
			t.Errorf("line %q written to the file", h2.At(i))
		}
	}
}

func TestHistoryFileMadePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	if err := os.WriteFile(path, []byte("ping\nlogin token=abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := openHistory(path, 10, func(l string) bool { return strings.Contains(l, "token") })
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if string(data) != "ping\n" || h.Len() != 1 {
		t.Errorf("history %q (%d lines): the secret line should be gone", data, h.Len())
	}
}

func TestDefaultHistoryFile(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/state")
	if got := DefaultHistoryFile(); got != filepath.Join("/var/state", "microbot", "history") {
		t.Errorf("with XDG_STATE_HOME: %q", got)
	}
	t.Setenv("HOME", "/home/ann")
	for _, v := range []string{"", "relative/dir"} {
		t.Setenv("XDG_STATE_HOME", v)
		if got := DefaultHistoryFile(); got != filepath.Join("/home/ann", ".local", "state", "microbot", "history") {
			t.Errorf("XDG_STATE_HOME=%q: %q", v, got)
		}
	}
}

func TestTerminalLineCutByTheEditor(t *testing.T) {
	tm := newTerm(t)
	at := tm.wait(0, prompt)
	tm.typ(strings.Repeat("x", maxEditorLine+10) + "\r")
	at = tm.wait(at, "error: the line is longer than the console's editor takes (4096 characters) and was cut: nothing was run")
	tm.typ("ping\r")
	ev := tm.recv()
	if ev.Text != "ping" {
		t.Errorf("line after the long one %q, want ping", ev.Text)
	}
	// A bracketed paste is no typed line: it may be longer.
	tm.reply(ev, "pong", false)
	long := strings.Repeat("y", maxEditorLine+10)
	tm.typ("\x1b[200~" + long + "\r\x1b[201~")
	if ev := tm.recv(); ev.Text != long {
		t.Errorf("pasted line of %d bytes, want %d", len(ev.Text), len(long))
	}
}

func TestTerminalCloseEndsThePromptLine(t *testing.T) {
	tm := newTerm(t)
	tm.wait(0, prompt)
	tm.typ("half")
	at := tm.wait(0, prompt+"half")
	tm.conn.Close()
	tm.wait(at, "\r\n")
}

// A log line written through LogWriter on the console's own terminal is
// printed above the prompt, the half-typed line drawn again below it;
// another writer gets it unchanged, and so does the terminal once the
// console is closed.
func TestTerminalLogAboveThePrompt(t *testing.T) {
	tm := newTerm(t)
	tm.wait(0, prompt)
	tm.typ("half")
	at := tm.wait(0, prompt+"half")
	log := tm.shell.LogWriter(tm.shell.out)
	const line = `level=WARN msg="registry slow"`
	if n, err := io.WriteString(log, line+"\n"); n != len(line)+1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	end := tm.wait(at, line+"\r\n"+prompt+"half")
	if got := tm.screen.String()[at:end]; !strings.Contains(got, "\x1b[K"+line) {
		t.Errorf("the prompt line was not cleared before the log line: %q", got)
	}
	tm.typ("way\r")
	if ev := tm.recv(); ev.Text != "halfway" {
		t.Errorf("line %q, want halfway", ev.Text)
	}

	var other strings.Builder
	io.WriteString(tm.shell.LogWriter(&other), line+"\n")
	if other.String() != line+"\n" {
		t.Errorf("another writer got %q", other.String())
	}

	tm.conn.Close()
	n := len(tm.screen.String())
	io.WriteString(log, "after\n")
	if got := tm.screen.String()[n:]; got != "after\n" {
		t.Errorf("after Close the terminal got %q, want the line as written", got)
	}
}

// Plain lines (a pipe): the log goes to its writer as written, even when
// that is the shell's output.
func TestPlainLogUnchanged(t *testing.T) {
	var out strings.Builder
	s, err := New(Config{UserID: "ann"}, WithIO(strings.NewReader(""), &out))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(s.LogWriter(&out), "level=INFO msg=x\n")
	if out.String() != "level=INFO msg=x\n" {
		t.Errorf("got %q", out.String())
	}
}
