package testenv

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// Closed reports whether nc, a connection of this process (a server's side
// of a TCP connection, say), was closed, without touching its deadlines or
// its data: for tests that check a shutdown cut a connection.
func Closed(tb testing.TB, nc net.Conn) bool {
	tb.Helper()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		tb.Fatalf("testenv.Closed: %T has no file descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	err = rc.Control(func(uintptr) {})
	return errors.Is(err, net.ErrClosed)
}

// BlockedIn reports whether a goroutine of this process with fn on its
// stack (e.g. "net/http.(*conn).serve") is blocked in network I/O: for
// tests that wait until a write blocks on a peer that does not read.
func BlockedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(g, "[IO wait") {
			return true
		}
	}
	return false
}
