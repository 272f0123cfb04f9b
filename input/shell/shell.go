// Package shell is the console input, "shell" in the table of inputs and
// the bot's default: each line typed (or piped) on standard input is a
// message to the bot, and the replies are printed on standard output.
//
// On a terminal it edits lines and keeps a history (github.com/chzyer/
// readline; --shell_history names a file to keep it in). When standard
// input is not a terminal (a pipe, a file) it reads plain lines and prints
// only the replies, so scripts and tests can drive the bot; it ends at end
// of input, and Recv then returns io.EOF.
//
// Every line is a direct message addressed to the bot, from the user given
// by --shell_user (MICRO_SHELL_USER; default: the operating system's user
// name), so a policy can be tried as any user. Blank lines are skipped.
//
// Lines are run one after the other, as a shell runs a script: Recv hands
// out the next line only once the previous one is answered, so "register
// service" then "get service" see each other's effect and the replies come
// out in the order of the lines. The connection implements the bot's
// Skipper, so a line the bot answers with nothing does not hold the next
// one back.
package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/chzyer/readline"
	"github.com/urfave/cli/v2"

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

// WithUser sets the id and display name of the console user.
func WithUser(id, name string) Option {
	return func(s *Shell) { s.userID, s.userName = id, name }
}

// New returns a console input on standard input and output.
func New(opts ...Option) *Shell {
	s := &Shell{userID: osUser(), prompt: "microbot> ", in: os.Stdin, out: os.Stdout}
	for _, o := range opts {
		o(s)
	}
	return s
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

// Flags returns --shell_user, --shell_user_name and --shell_history.
func (s *Shell) Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "shell_user",
			Usage:   "user id of the console user (policies decide by it; set it to try the bot as someone else)",
			EnvVars: []string{"MICRO_SHELL_USER"},
			Value:   osUser(),
		},
		&cli.StringFlag{
			Name:    "shell_user_name",
			Usage:   "display name of the console user (default: the user id)",
			EnvVars: []string{"MICRO_SHELL_USER_NAME"},
		},
		&cli.StringFlag{
			Name:    "shell_history",
			Usage:   "file keeping the console's line history (default: kept in memory only)",
			EnvVars: []string{"MICRO_SHELL_HISTORY"},
		},
	}
}

// Init reads the flags.
func (s *Shell) Init(c *cli.Context) error {
	if c.IsSet("shell_user") || s.userID == "" {
		s.userID = c.String("shell_user")
	}
	s.userName = c.String("shell_user_name")
	s.history = c.String("shell_history")
	if s.userID == "" || strings.ContainsFunc(s.userID, unicode.IsControl) || strings.ContainsFunc(s.userID, unicode.IsSpace) {
		return fmt.Errorf("shell: --shell_user %q: must be a non-empty id without spaces", s.userID)
	}
	return nil
}

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
		readline.IsTerminal(int(os.Stdin.Fd())) && readline.IsTerminal(int(os.Stdout.Fd()))
	if s.interactive != nil {
		interactive = *s.interactive
	}
	if interactive {
		rl, err := readline.NewEx(&readline.Config{
			Prompt:          s.prompt,
			HistoryFile:     s.history,
			InterruptPrompt: "^C",
			EOFPrompt:       "bye",
		})
		if err != nil {
			return nil, fmt.Errorf("shell: starting line editing: %w", err)
		}
		c.rl = rl
		c.out = rl.Stdout()
		fmt.Fprintln(c.out, `microbot console — type "help" for the commands, Ctrl-D to leave`)
		go c.readInteractive()
	} else {
		go c.readPlain(s.in)
	}
	s.conn = c
	return c, nil
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
	rl               *readline.Instance

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
// Ctrl-C on an empty line.
func (c *conn) readInteractive() {
	defer close(c.done)
	for {
		line, err := c.rl.Readline()
		if errors.Is(err, readline.ErrInterrupt) {
			if line == "" {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if !c.deliver(line) {
			return
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
		return &input.Event{
			Input:     Name,
			UserID:    c.userID,
			UserName:  c.userName,
			Room:      Room,
			Direct:    true,
			Addressed: true,
			Text:      line,
			Meta:      map[string]string{metaSeq: strconv.Itoa(seq)},
		}, nil
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

// Send prints reply; if it answers the line being answered, the next line
// may go.
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
		fmt.Fprintln(c.out, strings.TrimRight(reply.Text, "\n"))
	}
	if n, err := strconv.Atoi(to.Meta[metaSeq]); err == nil && n == c.outstanding {
		c.outstanding = 0
		c.free <- struct{}{} // cannot block: the token was taken for this line
	}
}

// Close stops reading; Recv returns an error wrapping input.ErrClosed.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		if c.rl != nil {
			c.rl.Close()
		}
	})
	return nil
}
