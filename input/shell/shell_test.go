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
	}
	want := []string{"hello", "\x00\xff garbage", "last line without newline"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if s.Connected() {
		t.Error("Connected after end of input")
	}
}

func TestSendKeepsTheOrderOfLines(t *testing.T) {
	var out bytes.Buffer
	s := New(WithIO(strings.NewReader("a\nb\nc\nd\n"), &out))
	conn, _ := s.Stream(context.Background())
	var evs []*input.Event
	for range 4 {
		ev, err := conn.Recv(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	ctx := context.Background()
	conn.Send(ctx, evs[2], &input.Reply{Text: "C"})
	conn.Send(ctx, evs[1], &input.Reply{Text: "B\n"})
	if out.Len() != 0 {
		t.Fatalf("printed %q before the first line's reply", out.String())
	}
	conn.(interface{ Skip(*input.Event) }).Skip(evs[0])
	if got := out.String(); got != "B\nC\n" {
		t.Fatalf("after skipping a: %q", got)
	}
	conn.Send(ctx, evs[3], &input.Reply{Text: "D"})
	conn.Send(ctx, &input.Event{}, &input.Reply{Text: "not a line"})
	if got := out.String(); got != "B\nC\nD\nnot a line\n" {
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

func TestRegistered(t *testing.T) {
	in, err := input.New("shell")
	if err != nil || in.String() != "shell" {
		t.Fatalf("input.New(shell) = %v, %v", in, err)
	}
}
