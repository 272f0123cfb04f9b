package ops

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// acceptLog is a listener that hands the test every connection it accepts.
type acceptLog struct {
	net.Listener
	conns chan net.Conn
}

func (l *acceptLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.conns <- c
	}
	return c, err
}

// An answer blocked on a caller that never reads does not hold its
// connection past Shutdown's context: Shutdown returns the context's
// error with the connection closed, not after the write timeout (30 s).
func TestShutdownCutsBlockedWrite(t *testing.T) {
	srv := NewServer(WithLogger(slog.New(slog.DiscardHandler)))
	called := make(chan struct{}, 1)
	wrote := make(chan error, 1)
	big := make([]byte, 32<<20) // more than the socket buffers hold
	srv.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		_, err := w.Write(big)
		wrote <- err
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := &acceptLog{Listener: ln, conns: make(chan net.Conn, 1)}
	srv.mu.Lock()
	srv.serveLocked(context.Background(), accepted)
	srv.mu.Unlock()
	t.Cleanup(func() { srv.hs.Close() })

	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4 << 10) //nolint:errcheck
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: ops\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	sc := <-accepted.conns
	<-called
	testenv.Eventually(t, time.Minute, "the answer's write blocked on the caller", func() bool {
		return testenv.BlockedIn("net/http.(*conn).serve")
	})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want %v (the write was still in flight)", err, context.DeadlineExceeded)
	}
	if !testenv.Closed(t, sc) {
		t.Fatal("the connection is still open after Shutdown's context ended")
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Error("the blocked write succeeded")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the handler's write still blocked after Shutdown closed its connection")
	}
}
