package shell

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/microbot/microbot/input"
)

// Completer proposes completions for the console's Tab key; *command.Table
// is one. The console asks it with a short deadline (see
// [WithCompleteTimeout]) and goes on without an answer that comes later,
// so a slow registry never freezes the line.
type Completer interface {
	// Complete proposes completions of ev.Text, the line typed up to the
	// cursor, for the console user ev names. Each candidate replaces
	// ev.Text[from:]. It should return when ctx ends.
	Complete(ctx context.Context, ev *input.Event) (from int, candidates []string)
}

// DefaultCompleteTimeout is how long Tab waits for the Completer.
const DefaultCompleteTimeout = 500 * time.Millisecond

// maxListed is how many candidates Tab lists at most.
const maxListed = 60

// maxEditorLine is the longest line the editor takes as typed
// (golang.org/x/term drops the keys past it; a bracketed paste may be
// longer).
const maxEditorLine = 4096

// errCut is returned by readLine for a typed line the editor cut at
// maxEditorLine.
var errCut = fmt.Errorf("the line is longer than the console's editor takes (%d characters) and was cut: nothing was run; "+
	"paste it in a terminal that brackets pastes, or give it to microbot exec or on standard input", maxEditorLine)

// keyInterrupt is the key Ctrl-C is turned into on its way to the line
// editor, which would otherwise end the input on it: Ctrl-G, "abort" in
// Emacs keys, which the editor has no use for.
const keyInterrupt = 7

// tty switches a terminal between the console's modes.
type tty interface {
	// Edit is the mode of the line editor: keys as typed, no echo, no
	// signals.
	Edit() error
	// Busy is the mode while a command runs: keys wait, unread and not
	// echoed, for the next prompt; Ctrl-C interrupts.
	Busy() error
	// Restore puts the terminal back as it was; the other modes then do
	// nothing.
	Restore() error
	// Size returns the terminal's width and height.
	Size() (width, height int, err error)
	// NotifyResize relays the terminal's size changes to ch until stop.
	NotifyResize(ch chan<- os.Signal) (stop func())
}

// console is the line editor on a terminal (golang.org/x/term's Terminal:
// one lock covers the line being edited and every write, so output is
// printed above the prompt and the half-typed line drawn again below it).
type console struct {
	t       *term.Terminal
	out     io.Writer // the terminal, for what goes around the editor
	tty     tty       // nil: not a terminal of this process (tests, WithTerminal)
	hist    *history
	color   bool
	timeout time.Duration
	comp    Completer
	event   func(text string) *input.Event // the console user's event for text

	quit    atomic.Bool  // Ctrl-C on an empty line: the input ends
	width   atomic.Int64 // of the terminal, for lists
	reading atomic.Bool  // a prompt is shown

	stopResize func()
	closeOnce  sync.Once

	closeMu sync.Mutex // serializes printAbove with close
	closed  bool       // close ran: the terminal is the shell's no more
}

// keys passes the terminal's input to the editor, with Ctrl-C turned into
// keyInterrupt; once quit is set it ends.
type keys struct {
	r    io.Reader
	quit *atomic.Bool
}

func (k keys) Read(p []byte) (int, error) {
	if k.quit.Load() {
		return 0, io.EOF
	}
	n, err := k.r.Read(p)
	for i, b := range p[:n] {
		if b == 3 {
			p[i] = keyInterrupt
		}
	}
	return n, err
}

func newConsole(in io.Reader, out io.Writer, tt tty, prompt string, hist *history, color bool, timeout time.Duration, comp Completer, event func(string) *input.Event) *console {
	k := &console{out: out, tty: tt, hist: hist, color: color, timeout: timeout, comp: comp, event: event}
	k.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{keys{in, &k.quit}, out}, prompt)
	k.t.History = hist
	k.t.AutoCompleteCallback = k.key
	// Pasted text comes marked: never completed, and not cut.
	k.t.SetBracketedPasteMode(true)
	k.width.Store(80)
	k.stopResize = func() {}
	if tt != nil {
		k.resize()
		ch := make(chan os.Signal, 1)
		stop := tt.NotifyResize(ch)
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-ch:
					k.resize()
				case <-done:
					return
				}
			}
		}()
		k.stopResize = func() { stop(); close(done) }
	}
	return k
}

// resize tells the editor the terminal's size.
func (k *console) resize() {
	if w, h, err := k.tty.Size(); err == nil && w > 0 {
		k.width.Store(int64(w))
		k.t.SetSize(w, h)
	}
}

// readLine puts the terminal in editing mode and reads a line; the
// terminal is left in busy mode. It returns io.EOF at Ctrl-D, or Ctrl-C,
// on an empty line, and errCut for a typed line cut at maxEditorLine.
func (k *console) readLine() (string, error) {
	if k.tty != nil {
		if err := k.tty.Edit(); err != nil {
			return "", fmt.Errorf("shell: terminal: %w", err)
		}
		defer k.tty.Busy()
		k.resize()
	}
	k.reading.Store(true)
	line, err := k.t.ReadLine()
	k.reading.Store(false)
	switch {
	case err == term.ErrPasteIndicator: // a pasted line is a line
		err = nil
	case err == nil && utf8.RuneCountInString(line) == maxEditorLine:
		err = errCut
	}
	return line, err
}

// key is the editor's hook for every key: Tab completes, Ctrl-C clears
// the line or, on an empty one, ends the input.
func (k *console) key(line string, pos int, key rune) (string, int, bool) {
	switch key {
	case keyInterrupt:
		if line == "" {
			k.quit.Store(true) // the next read ends the input
		}
		return "", 0, true
	case '\t':
		return k.complete(line, pos)
	}
	return "", 0, false
}

// complete completes the word before the cursor: the one candidate, or what
// all the candidates start with; when that adds nothing, it lists them.
func (k *console) complete(line string, pos int) (string, int, bool) {
	if k.comp == nil {
		return "", 0, false
	}
	head, tail := line[:pos], line[pos:]
	from, cands := k.ask(head)
	if from < 0 || from > len(head) || len(cands) == 0 {
		return "", 0, false
	}
	partial := head[from:]
	var insert string
	switch prefix := commonPrefix(cands); {
	case len(cands) == 1:
		insert = cands[0]
		if !strings.HasPrefix(tail, " ") {
			insert += " "
		}
	case len(prefix) > len(partial):
		insert = prefix
	default:
		k.list(cands)
		return line, pos, true
	}
	head = head[:from] + insert
	return head + tail, len(head), true
}

// ask runs the Completer with the deadline, and gives up on it (leaving it
// to finish alone) when it does not keep it.
func (k *console) ask(head string) (from int, cands []string) {
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	type answer struct {
		from  int
		cands []string
	}
	ch := make(chan answer, 1)
	go func() {
		defer func() {
			if recover() != nil { // a broken completer must not take the console down
				ch <- answer{from: -1}
			}
		}()
		from, cands := k.comp.Complete(ctx, k.event(head))
		ch <- answer{from, cands}
	}()
	select {
	case a := <-ch:
		return a.from, a.cands
	case <-ctx.Done():
		return -1, nil
	}
}

// list prints candidates above the prompt, in columns.
func (k *console) list(cands []string) {
	more := 0
	if len(cands) > maxListed {
		cands, more = cands[:maxListed], len(cands)-maxListed
	}
	shown := make([]string, len(cands))
	w := 0
	for i, c := range cands {
		shown[i] = input.PrintableLine(c)
		w = max(w, utf8.RuneCountInString(shown[i]))
	}
	w += 2
	cols := max(1, int(k.width.Load())/w)
	var b strings.Builder
	for i, c := range shown {
		b.WriteString(c)
		if (i+1)%cols == 0 || i == len(cands)-1 {
			b.WriteByte('\n')
		} else {
			b.WriteString(strings.Repeat(" ", w-utf8.RuneCountInString(c)))
		}
	}
	if more > 0 {
		fmt.Fprintf(&b, "… and %d more\n", more)
	}
	k.t.Write([]byte(b.String()))
}

// print writes text on a line of its own above the prompt (right away when
// no prompt is shown); an error in red when colours are on. Control
// characters other than tab and new line are shown as ^X, so a reply can
// never drive the terminal.
func (k *console) print(text string, isError bool) {
	text = input.Printable(strings.TrimRight(text, "\n"))
	if isError && k.color {
		text = string(k.t.Escape.Red) + text + string(k.t.Escape.Reset)
	}
	k.t.Write([]byte(text + "\n"))
}

// printAbove prints text as print does (no colour), unless the console
// was closed: false then, and nothing is written.
func (k *console) printAbove(text string) bool {
	k.closeMu.Lock()
	defer k.closeMu.Unlock()
	if k.closed {
		return false
	}
	k.print(text, false)
	return true
}

// close puts the terminal back as it was; bye (when not empty) is written
// after the prompt the input ended at. A prompt left waiting (the bot
// stopped) is ended with a new line, so what comes next starts on a line
// of its own.
func (k *console) close(bye string) {
	k.closeOnce.Do(func() {
		k.closeMu.Lock()
		defer k.closeMu.Unlock()
		k.closed = true
		k.stopResize()
		switch {
		case bye != "":
			io.WriteString(k.out, bye+"\r\n")
		case k.reading.Load():
			io.WriteString(k.out, "\r\n")
		}
		k.t.SetBracketedPasteMode(false)
		if k.tty != nil {
			k.tty.Restore()
		}
	})
}

// commonPrefix returns the longest prefix of all of ss, whole runes.
func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		n := 0
		for n < len(p) && n < len(s) && p[n] == s[n] {
			n++
		}
		p = p[:n]
	}
	for !utf8.ValidString(p) {
		p = p[:len(p)-1]
	}
	return p
}
