// Package shell is the console input, "shell" in the table of inputs and
// the bot's default: each line typed (or piped) on standard input is a
// message to the bot, and the replies are printed on standard output.
//
// On a terminal (standard input and output both terminals) it is a line
// editor (golang.org/x/term): arrows, Emacs keys, bracketed paste, Tab
// completion through a [Completer] (the bot's command table: command words,
// service names, endpoints, request skeletons), and a history kept between
// runs in a file (Config.History, by default [DefaultHistoryFile]; lines
// that carry a secret, by the test given with [WithSecretLines], are never
// written to it). Error replies are red unless NO_COLOR is set. Ctrl-D, or
// Ctrl-C on an empty line, leaves; Ctrl-C on a line clears it, and while a
// command runs it interrupts the bot.
//
// When standard input or output is not a terminal (a pipe, a file) it reads
// plain lines and prints only the replies, exactly as they are, with no
// escape code of any kind, so scripts and tests can drive the bot; it ends
// at end of input, and Recv then returns io.EOF.
//
// Every line is a direct message addressed to the bot, from the user given
// by Config.UserID (default: the operating system's user name), so a policy
// can be tried as any user. Blank lines are skipped.
//
// Lines are run one after the other, as a shell runs a script: Recv hands
// out the next line only once the previous one is answered, so "register
// service" then "get service" see each other's effect and the replies come
// out in the order of the lines. On a terminal the next prompt is drawn
// only then, so a reply always comes before the prompt. Output that answers
// no line being run (a late reply, a notification posted with
// [Shell.Post]) is printed above the prompt, and the half-typed line is
// drawn again below it. The connection
// implements the bot's Skipper, so a line the bot answers with nothing does
// not hold the next one back.
package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/term"

	"github.com/microbot/microbot/input"
)

// Name is the input's name in the table of inputs.
const Name = "shell"

// Room is the Room of every event of the console.
const Room = "console"

// MaxLineSize is the longest line read whole; the rest of a longer line is
// dropped (the bot then refuses the message as too long).
const MaxLineSize = 4 << 20

// metaSeq is the Event.Meta key holding a line's number.
const metaSeq = "shell.seq"

// Shell is the console input.
type Shell struct {
	userID, userName string
	history          string
	secret           func(line string) bool
	completer        Completer
	completeTimeout  time.Duration
	color            bool
	prompt           string
	in               io.Reader
	out              io.Writer
	interactive      *bool // nil: decide from the file descriptors

	mu   sync.Mutex
	conn *conn
}

// Option configures a Shell.
type Option func(*Shell)

// WithIO makes the shell read lines from r and print replies to w, as
// plain lines (no line editing).
func WithIO(r io.Reader, w io.Writer) Option {
	return func(s *Shell) {
		s.in, s.out = r, w
		plain := false
		s.interactive = &plain
	}
}

// WithTerminal runs the line editor on rw instead of the process's
// terminal (an SSH session, a test), which must already be in raw mode if
// it is a terminal.
func WithTerminal(rw io.ReadWriter) Option {
	return func(s *Shell) {
		s.in, s.out = rw, rw
		editor := true
		s.interactive = &editor
	}
}

// WithSecretLines sets the test of the lines that carry a secret: they
// are kept for the session but never written to the history file. The bot
// gives the audit log's test (bot/audit.HasSecret).
func WithSecretLines(secret func(line string) bool) Option {
	return func(s *Shell) { s.secret = secret }
}

// WithCompleter sets what the Tab key asks for completions.
func WithCompleter(c Completer) Option { return func(s *Shell) { s.completer = c } }

// WithCompleteTimeout sets how long Tab waits for the Completer (default,
// and for d <= 0: [DefaultCompleteTimeout]).
func WithCompleteTimeout(d time.Duration) Option {
	return func(s *Shell) {
		if d > 0 {
			s.completeTimeout = d
		}
	}
}

// WithColor turns colours (error replies in red) on or off in the line
// editor. The default is on unless NO_COLOR is set or TERM is "dumb";
// plain lines never have colours.
func WithColor(on bool) Option { return func(s *Shell) { s.color = on } }

// Config is the console's configuration.
type Config struct {
	// UserID is the console user's id, by which policies decide: a
	// non-empty id without spaces.
	UserID string
	// UserName is the console user's display name (default: UserID).
	UserName string
	// History is the file keeping the line editor's history between runs;
	// empty: kept in memory only.
	History string
	// Names names the fields in error messages.
	Names input.Names
}

// DefaultConfig is the console of the user running the process, its
// history in DefaultHistoryFile.
func DefaultConfig() Config { return Config{UserID: osUser(), History: DefaultHistoryFile()} }

// New returns a console input on standard input and output, or an error if
// cfg is not usable.
func New(cfg Config, opts ...Option) (*Shell, error) {
	if cfg.UserID == "" || strings.ContainsFunc(cfg.UserID, unicode.IsControl) || strings.ContainsFunc(cfg.UserID, unicode.IsSpace) {
		return nil, fmt.Errorf("shell: %s %q: must be a non-empty id without spaces", cfg.Names.Of("UserID"), cfg.UserID)
	}
	s := &Shell{
		userID: cfg.UserID, userName: cfg.UserName, history: cfg.History,
		prompt: "microbot> ", in: os.Stdin, out: os.Stdout,
		completeTimeout: DefaultCompleteTimeout,
		color:           os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// osUser returns the name of the user running the process.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "console"
}

// String returns "shell".
func (s *Shell) String() string { return Name }

// Stream starts reading the console. The console is read once: a second
// Stream returns the same connection.
func (s *Shell) Stream(ctx context.Context) (input.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return s.conn, nil
	}
	name := s.userName
	if name == "" {
		name = s.userID
	}
	c := &conn{
		userID: s.userID, userName: name,
		lines:  make(chan string),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
		free:   make(chan struct{}, 1),
		out:    s.out,
	}
	c.free <- struct{}{}
	interactive := s.in == os.Stdin && s.out == os.Stdout &&
		term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	if s.interactive != nil {
		interactive = *s.interactive
	}
	if interactive {
		var tt tty
		if s.in == os.Stdin && s.out == os.Stdout {
			t, err := openTTY(os.Stdin)
			if err != nil {
				return nil, fmt.Errorf("shell: terminal: %w", err)
			}
			tt = t
		}
		hist, herr := openHistory(s.history, MaxHistory, s.secret)
		c.answered = make(chan struct{}, 1)
		c.con = newConsole(s.in, s.out, tt, s.prompt, hist, s.color, s.completeTimeout, s.completer, c.event)
		c.con.print(`microbot console — type "help" for the commands, Tab to complete, Ctrl-D to leave`, false)
		if herr != nil {
			c.con.print(fmt.Sprintf("(%v: the history is kept for this session only)", herr), false)
		}
		go c.readInteractive()
	} else {
		go c.readPlain(s.in)
	}
	s.conn = c
	return c, nil
}

// LogWriter returns a writer for output meant for w that answers no line,
// such as the process's log on standard error. While the line editor runs
// on a terminal that w writes to as well, each Write is printed above the
// prompt as whole lines (made printable like a reply), the half-typed line
// drawn again below them, so it never lands inside the prompt; otherwise
// (plain lines, another terminal or a file, before Stream, after Close) it
// goes to w unchanged. w writes to the same terminal if it is the shell's
// output itself, or a file on the same terminal (standard error when
// standard output is that terminal).
func (s *Shell) LogWriter(w io.Writer) io.Writer {
	return &logWriter{s: s, w: w, same: sameTerminal(w, s.out)}
}

// logWriter is what LogWriter returns.
type logWriter struct {
	s    *Shell
	w    io.Writer
	same bool // w writes to the shell's terminal
}

func (l *logWriter) Write(p []byte) (int, error) {
	if l.same {
		l.s.mu.Lock()
		c := l.s.conn
		l.s.mu.Unlock()
		if c != nil && c.con != nil && c.con.printAbove(string(p)) {
			return len(p), nil
		}
	}
	return l.w.Write(p)
}

// sameTerminal reports whether a and b write to the same terminal: they
// are the same writer, or files on one terminal.
func sameTerminal(a, b io.Writer) bool {
	if ta := reflect.TypeOf(a); ta != nil && ta == reflect.TypeOf(b) && ta.Comparable() && a == b {
		return true
	}
	fa, ok := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if !ok || !ok2 || !term.IsTerminal(int(fa.Fd())) || !term.IsTerminal(int(fb.Fd())) {
		return false
	}
	sa, err := fa.Stat()
	sb, err2 := fb.Stat()
	return err == nil && err2 == nil && os.SameFile(sa, sb)
}

// Close closes the console's connection, if it was opened, which puts the
// terminal back as it was. Call it before the process exits: the bot
// closes a connection in the background once its replies are out.
func (s *Shell) Close() error {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// Connected reports whether the console is still open.
func (s *Shell) Connected() bool {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return true
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// conn is the console's single connection.
type conn struct {
	userID, userName string
	con              *console      // the line editor; nil for plain lines
	answered         chan struct{} // with con: the line handed out is answered

	lines     chan string   // lines read, one at a time
	done      chan struct{} // closed at end of input
	closed    chan struct{} // closed by Close
	closeOnce sync.Once

	// free holds a token while no line is being answered: Recv takes it
	// before handing out a line, the line's reply (or Skip) gives it back.
	free chan struct{}

	mu          sync.Mutex // guards seq, outstanding and writes to out
	seq         int        // lines handed out
	outstanding int        // the line being answered, 0 if none
	out         io.Writer

	histWarned bool // the history's write error was shown (reading goroutine only)
}

// readPlain reads lines from r until it ends.
func (c *conn) readPlain(r io.Reader) {
	defer close(c.done)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if line != "" || err == nil {
			if !c.deliver(line) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line, up to MaxLineSize bytes of it, without its end
// of line.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) <= MaxLineSize {
			buf = append(buf, chunk...)
		} else if len(buf) < MaxLineSize {
			buf = append(buf, chunk[:MaxLineSize-len(buf)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := strings.TrimRight(string(buf), "\r\n")
		return line, err
	}
}

// readInteractive reads edited lines from the terminal until Ctrl-D, or
// Ctrl-C on an empty line. The next prompt is drawn only once the line
// before is answered, so its reply comes first.
func (c *conn) readInteractive() {
	defer close(c.done)
	bye := ""
	defer func() { c.con.close(bye) }()
	for {
		line, err := c.con.readLine()
		if errors.Is(err, errCut) {
			c.con.print("error: "+err.Error(), true)
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				bye = "bye"
			}
			return
		}
		if strings.TrimFunc(line, unicode.IsSpace) == "" {
			continue
		}
		if !c.deliver(line) {
			return
		}
		select {
		case <-c.answered:
		case <-c.closed:
			return
		}
		if err := c.con.hist.Err(); err != nil && !c.histWarned {
			c.histWarned = true
			c.con.print(fmt.Sprintf("(%v: no more lines are written to it)", err), false)
		}
	}
}

// deliver hands a line to Recv; false once the connection is closed.
func (c *conn) deliver(line string) bool {
	if strings.TrimFunc(line, unicode.IsSpace) == "" {
		return true
	}
	select {
	case c.lines <- line:
		return true
	case <-c.closed:
		return false
	}
}

// Recv returns the next line as an event once the previous line has been
// answered, or io.EOF at end of input.
func (c *conn) Recv(ctx context.Context) (*input.Event, error) {
	select {
	case <-c.free:
	case <-c.closed:
		return nil, fmt.Errorf("shell: %w", input.ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case line := <-c.lines:
		c.mu.Lock()
		c.seq++
		c.outstanding = c.seq
		seq := c.seq
		c.mu.Unlock()
		ev := c.event(line)
		ev.Meta = map[string]string{metaSeq: strconv.Itoa(seq)}
		return ev, nil
	case <-c.done:
		// lines is unbuffered, so every line read was taken before done
		// closed.
		c.free <- struct{}{}
		return nil, io.EOF
	case <-c.closed:
		c.free <- struct{}{}
		return nil, fmt.Errorf("shell: %w", input.ErrClosed)
	case <-ctx.Done():
		c.free <- struct{}{}
		return nil, ctx.Err()
	}
}

// event returns the console user's event for text.
func (c *conn) event(text string) *input.Event {
	return &input.Event{
		Input:     Name,
		UserID:    c.userID,
		UserName:  c.userName,
		Room:      Room,
		Direct:    true,
		Addressed: true,
		Text:      text,
	}
}

// Send prints reply; if it answers the line being answered, the next line
// may go (and, on a terminal, the next prompt is drawn). A progress report
// (Reply.Progress) is printed without letting the next line go: the
// answer is still to come. Anything else (a late reply, an event) is
// printed at once: on a terminal above the prompt, with the half-typed line
// drawn again below it, never into it.
func (c *conn) Send(ctx context.Context, to *input.Event, reply *input.Reply) error {
	c.put(to, reply)
	return nil
}

// Skip lets the next line go: to gets no reply.
func (c *conn) Skip(to *input.Event) { c.put(to, nil) }

func (c *conn) put(to *input.Event, reply *input.Reply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if reply != nil && reply.Text != "" {
		c.printLocked(reply.Text, reply.Error)
	}
	if reply != nil && reply.Progress {
		return // the line's answer is still to come
	}
	if n, err := strconv.Atoi(to.Meta[metaSeq]); err == nil && n == c.outstanding {
		c.outstanding = 0
		c.free <- struct{}{} // cannot block: the token was taken for this line
		if c.answered != nil {
			c.answered <- struct{}{} // nor this: one line is handed out at a time
		}
	}
}

// printLocked prints text: on a terminal above the prompt (red if red),
// otherwise as plain lines. c.mu must be held.
func (c *conn) printLocked(text string, red bool) {
	// The terminal obeys control characters: none gets to it as is.
	if c.con != nil {
		c.con.print(text, red) // made printable there
	} else {
		fmt.Fprintln(c.out, input.Printable(strings.TrimRight(text, "\n")))
	}
}

// Post prints p on the console, whose one room is [Room], as plain text
// with a severity marker (input.PlainText): on a terminal above the
// prompt, the half-typed line drawn again below it, in red for an error or
// a critical severity; otherwise as plain lines between the replies. It
// fails with an error wrapping input.ErrNotConnected before Stream, and
// input.ErrClosed after Close. The console has no threads: Posted is
// empty.
func (s *Shell) Post(ctx context.Context, p *input.Post) (input.Posted, error) {
	if p.Room != Room {
		return input.Posted{}, fmt.Errorf("shell: no room %q: the console's one room is %q", p.Room, Room)
	}
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return input.Posted{}, fmt.Errorf("shell: post: %w: the console is not open yet", input.ErrNotConnected)
	}
	select {
	case <-c.closed:
		return input.Posted{}, fmt.Errorf("shell: post: %w", input.ErrClosed)
	default:
	}
	if err := ctx.Err(); err != nil {
		return input.Posted{}, fmt.Errorf("shell: post: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.printLocked(input.PlainText(p, ""), p.Severity >= input.SeverityError)
	return input.Posted{}, nil
}

// Close stops reading and puts the terminal back as it was; Recv returns
// an error wrapping input.ErrClosed.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		if c.con != nil {
			c.con.close("")
		}
	})
	return nil
}

var (
	_ input.Input          = (*Shell)(nil)
	_ input.StatusReporter = (*Shell)(nil)
	_ input.Poster         = (*Shell)(nil)
)
