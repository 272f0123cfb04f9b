package shell

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/input"
)

func TestRecvLinesThenEOF(t *testing.T) {
	in := "hello\r\n\n   \n\x00\xff garbage\nlast line without newline"
	var out bytes.Buffer
	s := New(WithIO(strings.NewReader(in), &out), WithUser("ann", "Ann"))
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
	s := New(WithIO(strings.NewReader("a\nb\nc\n"), &out))
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
	if got := out.String(); got != "A\nnot a line\nC\n" {
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
	s := New(WithIO(pr, io.Discard))
	conn, _ := s.Stream(context.Background())
	conn.Close()
	if _, err := conn.Recv(context.Background()); !errors.Is(err, input.ErrClosed) {
		t.Errorf("Recv after Close: %v", err)
	}
}

func TestInitFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantID  string
		wantErr bool
	}{
		{[]string{"--shell_user", "U123"}, "U123", false},
		{nil, osUser(), false},
		{[]string{"--shell_user", "two words"}, "", true},
		{[]string{"--shell_user", ""}, "", true},
	}
	for _, tt := range tests {
		s := New()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		for _, f := range s.Flags() {
			if err := f.Apply(fs); err != nil {
				t.Fatal(err)
			}
		}
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		err := s.Init(cli.NewContext(cli.NewApp(), fs, nil))
		if (err != nil) != tt.wantErr {
			t.Errorf("Init(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
		}
		if err == nil && s.userID != tt.wantID {
			t.Errorf("Init(%q) user = %q, want %q", tt.args, s.userID, tt.wantID)
		}
	}
}
