package shell

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
)

func TestRecvLinesThenEOF(t *testing.T) {
	in := "hello\r\n\n   \n\x00\xff garbage\nlast line without newline"
	var out bytes.Buffer
	s := newShell(t, Config{UserID: "ann", UserName: "Ann"}, WithIO(strings.NewReader(in), &out))
	conn, err := s.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ev, err := conn.Recv(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ev.Addressed || !ev.Direct || ev.UserID != "ann" || ev.UserName != "Ann" || ev.Input != "shell" || ev.Room != Room {
			t.Errorf("event %+v", ev)
		}
		got = append(got, ev.Text)
		conn.(interface{ Skip(*input.Event) }).Skip(ev)
	}
	want := []string{"hello", "\x00\xff garbage", "last line without newline"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if s.Connected() {
		t.Error("Connected after end of input")
	}
}

func TestNextLineWaitsForTheReply(t *testing.T) {
	var out bytes.Buffer
	s := newShell(t, Config{UserID: "ann"}, WithIO(strings.NewReader("a\nb\nc\n"), &out))
	conn, _ := s.Stream(context.Background())
	ctx := context.Background()
	a, err := conn.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// b is not handed out while a is unanswered.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if ev, err := conn.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Recv before the reply = %v, %v; want it to wait", ev, err)
	}
	// Nor after a progress report of a: its answer is still to come.
	conn.Send(ctx, a, &input.Reply{Text: "a: step 1/2", Progress: true})
	short2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if ev, err := conn.Recv(short2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv after a progress report = %v, %v; want it to wait for the answer", ev, err)
	}
	conn.Send(ctx, a, &input.Reply{Text: "A\n"})
	b, err := conn.Recv(ctx)
	if err != nil || b.Text != "b" {
		t.Fatalf("Recv after the reply = %v, %v", b, err)
	}
	conn.(interface{ Skip(*input.Event) }).Skip(b)
	c, err := conn.Recv(ctx)
	if err != nil || c.Text != "c" {
		t.Fatalf("Recv after Skip = %v, %v", c, err)
	}
	conn.Send(ctx, &input.Event{}, &input.Reply{Text: "not a line"})
	conn.Send(ctx, c, &input.Reply{Text: "C"})
	if _, err := conn.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv at the end = %v", err)
	}
	if _, err := conn.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv again at the end = %v", err)
	}
	if got := out.String(); got != "a: step 1/2\nA\nnot a line\nC\n" {
		t.Errorf("output %q", got)
	}
}

func TestReadLineCapsLongLines(t *testing.T) {
	long := strings.Repeat("x", MaxLineSize+1000)
	br := bufio.NewReaderSize(strings.NewReader(long+"\nnext\n"), 64<<10)
	line, err := readLine(br)
	if err != nil || len(line) != MaxLineSize {
		t.Fatalf("long line: %d bytes, %v", len(line), err)
	}
	if line, err = readLine(br); line != "next" || err != nil {
		t.Fatalf("line after a long one: %q, %v", line, err)
	}
}

func TestCloseUnblocksRecv(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	s := newShell(t, Config{UserID: "ann"}, WithIO(pr, io.Discard))
	conn, _ := s.Stream(context.Background())
	conn.Close()
	if _, err := conn.Recv(context.Background()); !errors.Is(err, input.ErrClosed) {
		t.Errorf("Recv after Close: %v", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{UserID: "U123"}, ""},
		{DefaultConfig(), ""},
		{Config{UserID: "two words"}, `shell: UserID "two words": must be a non-empty id without spaces`},
		{Config{UserID: "", Names: input.Names{"UserID": "--shell_user"}}, `shell: --shell_user "": must be`},
	}
	for _, tt := range tests {
		s, err := New(tt.cfg)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || s != nil {
				t.Errorf("New(%+v) = %v, %v; want an error containing %q", tt.cfg, s, err, tt.wantErr)
			}
			continue
		}
		if err != nil || s.userID != tt.cfg.UserID {
			t.Errorf("New(%+v) = %v, %v", tt.cfg, s, err)
		}
	}
	if DefaultConfig().UserID != osUser() {
		t.Errorf("DefaultConfig user %q, want %q", DefaultConfig().UserID, osUser())
	}
}

// TestPost: a post is printed as plain text with its severity marker,
// only to the console's room, only while the console is open.
func TestPost(t *testing.T) {
	ctx := context.Background()
	pr, pw := io.Pipe()
	defer pw.Close()
	out := &testenv.Buffer{}
	s := newShell(t, Config{UserID: "ann"}, WithIO(pr, out))
	post := &input.Post{
		Room: Room, Title: "Deploy of web v2", Text: "started by alice\n", Severity: input.SeverityWarning,
		Fields: []input.Field{{Name: "service", Value: "web"}, {Name: "version", Value: "v2"}},
		Link:   "https://ci.example.org/42", Source: "ci", Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	if _, err := s.Post(ctx, post); !errors.Is(err, input.ErrNotConnected) {
		t.Errorf("Post before Stream: %v, want ErrNotConnected", err)
	}
	conn, err := s.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	posted, err := s.Post(ctx, post)
	if err != nil || posted != (input.Posted{}) {
		t.Fatalf("Post = %+v, %v", posted, err)
	}
	want := "[WARNING] Deploy of web v2\nstarted by alice\nservice: web\nversion: v2\nhttps://ci.example.org/42\n— ci, 2024-05-01 12:00:00 UTC\n"
	if got := out.String(); got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
	if _, err := s.Post(ctx, &input.Post{Room: "elsewhere", Text: "x"}); err == nil || !strings.Contains(err.Error(), `no room "elsewhere"`) {
		t.Errorf("Post to another room: %v", err)
	}
	conn.Close()
	if _, err := s.Post(ctx, post); !errors.Is(err, input.ErrClosed) {
		t.Errorf("Post after Close: %v, want ErrClosed", err)
	}
	if got := out.String(); got != want {
		t.Errorf("refused posts printed something: %q", got)
	}
}

func newShell(t *testing.T, cfg Config, opts ...Option) *Shell {
	t.Helper()
	s, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The console prints no control character as it is: a reply cannot drive
// the terminal (issue 15, item 9).
func TestRepliesPrintable(t *testing.T) {
	var out bytes.Buffer
	s := newShell(t, Config{UserID: "ann"}, WithIO(strings.NewReader("x\n"), &out))
	conn, err := s.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := conn.Recv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(context.Background(), ev, &input.Reply{Text: "version \x1b[2J\x1b[31mHACKED\nnext\tline\n"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "version \\x1b[2J\\x1b[31mHACKED\nnext\tline\n" {
		t.Errorf("printed %q", got)
	}
}
