package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/internal/testenv"
)

// startServer runs a Server for h on a loopback listener and returns it and
// its address; the test closes it at the end.
func startServer(t *testing.T, h Handler, opts ...ServerOption) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, opts...)
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// eachConn calls f on every connection of srv that is idle (waiting for
// its next request), and reports whether every connection is idle. Taking
// each connection's lock orders the reads after its goroutine's writes.
func eachConn(srv *Server, f func(*serverConn)) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for sc := range srv.conns {
		sc.mu.Lock()
		idle := sc.state == stateIdle
		sc.mu.Unlock()
		if !idle {
			return false
		}
		f(sc)
	}
	return true
}

// A caller that asks for a large answer and never reads it holds the
// connection no longer than the write timeout (issue 15, item 4): the
// write fails, the connection closes, and Shutdown does not wait for it.
func TestWriteTimeoutCallerNotReading(t *testing.T) {
	called := make(chan struct{}, 1)
	big := make([]byte, 32<<20) // more than the socket buffers hold
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(handlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		called <- struct{}{}
		return big, nil
	}), WithWriteTimeout(200*time.Millisecond), WithIdleTimeout(time.Hour))
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })

	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4 << 10) //nolint:errcheck
	if _, err := io.WriteString(c, post+"Content-Length: 1\r\n\r\nx"); err != nil {
		t.Fatal(err)
	}
	<-called
	// The connection is busy writing to a caller that does not read:
	// Shutdown lets it finish, which the write timeout bounds.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v: the write to a caller that does not read was not cut off", err)
	}
}

// An error answer larger than the buffer is written under the deadline
// too (the Micro-Error header and the body each hold the detail).
func TestWriteTimeoutErrorAnswer(t *testing.T) {
	called := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(handlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		select {
		case called <- struct{}{}:
		default:
		}
		return nil, rpcerr.BadRequest("svc", "%s", strings.Repeat("e", 4<<10))
	}), WithWriteTimeout(200*time.Millisecond), WithIdleTimeout(time.Hour))
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4 << 10) //nolint:errcheck
	// Pipelined requests whose answers are never read fill the buffers.
	go func() {
		for {
			if _, err := io.WriteString(c, post+"Content-Length: 1\r\n\r\nx"); err != nil {
				return
			}
		}
	}()
	<-called
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v: writing error answers to a caller that does not read was not cut off", err)
	}
}

// A keep-alive connection that received a 1 MiB header keeps neither a
// buffer for it nor the header's values while it waits for the next
// request (issue 15, item 5).
func TestIdleConnectionKeepsNoHeader(t *testing.T) {
	got := make(chan seen, 10)
	srv, addr := startServer(t, echoHandler(got))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	br := bufio.NewReader(c)
	long := strings.Repeat("s", 900<<10)
	for _, hdr := range []string{"X-Big: " + long, "Micro-Service: " + long, "Micro-Meta-Big: " + long} {
		if _, err := io.WriteString(c, post+hdr+"\r\nContent-Length: 1\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%.20s: %v %v", hdr, res, err)
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck
		<-got
		testenv.Eventually(t, 20*time.Second, "the connection idle", func() bool {
			idle := eachConn(srv, func(sc *serverConn) {
				if n := cap(sc.lr.long); n > 0 {
					t.Fatalf("%.20s: an idle connection keeps a %d-byte line buffer", hdr, n)
				}
				if n := max(len(sc.lastService), len(sc.lastEndpoint), len(sc.lastCT)); n > maxInterned {
					t.Fatalf("%.20s: an idle connection keeps a %d-byte header value", hdr, n)
				}
				if sc.req.Metadata != nil || sc.req.Body != nil {
					t.Fatalf("%.20s: an idle connection keeps the last request's metadata or body", hdr)
				}
			})
			return idle
		})
	}
}

// The client's pooled connections keep no long header buffer either.
func TestPooledConnectionKeepsNoHeader(t *testing.T) {
	long := strings.Repeat("s", 900<<10)
	addr := canned(t, "HTTP/1.1 200 OK\r\nX-Big: "+long+"\r\nContent-Length: 1\r\n\r\nz")
	c := NewClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Send(ctx, addr, &Request{Endpoint: "A.B"})
	if err != nil || string(res.Body) != "z" {
		t.Fatalf("Send = %v, %v", res, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cs := range c.idle {
		for _, cn := range cs {
			if cap(cn.lr.long) > 0 {
				t.Errorf("a pooled connection keeps a %d-byte header buffer", cap(cn.lr.long))
			}
		}
	}
}

// Connections over the limit are answered with a clear 503 and closed;
// when a connection closes, a new one is served again (issue 15, item 5).
func TestMaxConns(t *testing.T) {
	got := make(chan seen, 10)
	var logs testenv.Buffer
	srv, addr := startServer(t, echoHandler(got), WithMaxConns(2), WithErrorID("svc"),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
		if _, err := io.WriteString(c, post+"Content-Length: 1\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
		if res, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || res.StatusCode != 200 {
			t.Fatalf("held connection: %v %v", res, err)
		}
		<-got
		held = append(held, c)
	}
	cl := NewClient()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 3 {
		_, err := cl.Send(ctx, addr, &Request{Endpoint: "A.B", Body: []byte("y")})
		var e *rpcerr.Error
		if !errors.As(err, &e) || e.Code != 503 || e.ID != "svc" || !strings.Contains(e.Detail, "too many connections to this server (limit 2)") {
			t.Fatalf("a third connection: %v; want a 503 about the connection limit", err)
		}
	}
	if n := strings.Count(logs.String(), "at its connection limit"); n != 1 {
		t.Errorf("%d log lines about refusals, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "limit=2") {
		t.Errorf("the log line does not give the limit:\n%s", logs.String())
	}
	if len(got) != 0 {
		t.Fatal("a refused call reached the handler")
	}
	held[0].Close()
	testenv.Eventually(t, 20*time.Second, "a call served once a connection closed", func() bool {
		res, err := cl.Send(ctx, addr, &Request{Endpoint: "A.B", Body: []byte("z")})
		return err == nil && string(res.Body) == "echo:z"
	})
	srv.mu.Lock()
	n := len(srv.conns)
	srv.mu.Unlock()
	if n > 2 {
		t.Errorf("%d connections open, limit 2", n)
	}
}

// BenchmarkIdleConnMemory reports the heap kept by keep-alive connections
// that each received one request with a 1000 KiB header (two fields of
// 500 KiB, one of them Micro-Service) and then sit idle (issue 15, item 5).
func BenchmarkIdleConnMemory(b *testing.B) {
	const conns = 100
	long := strings.Repeat("s", 500<<10)
	for b.Loop() {
		func() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := NewServer(handlerFunc(func(ctx context.Context, req *Request) ([]byte, error) { return []byte("ok"), nil }))
			go srv.Serve(ln) //nolint:errcheck
			// Every connection is gone before the next round measures.
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					b.Fatal(err)
				}
			}()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range conns {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute)) //nolint:errcheck
				if _, err := io.WriteString(c, post+"Micro-Service: "+long+"\r\nX-Big: "+long+"\r\nContent-Length: 1\r\n\r\nx"); err != nil {
					b.Fatal(err)
				}
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil || res.StatusCode != 200 {
					b.Fatal(res, err)
				}
				io.Copy(io.Discard, res.Body) //nolint:errcheck
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/conns, "heap-B/idle-conn")
		}()
	}
}

// When Shutdown's context ends, a connection still writing a large answer
// to a caller that does not read is cut at once: Shutdown returns, the
// handler's context is cancelled and the connection is closed, long before
// the write timeout (10 minutes here) could end the write.
func TestShutdownCutsBlockedWrite(t *testing.T) {
	called := make(chan context.Context, 1)
	big := make([]byte, 32<<20) // more than the socket buffers hold
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(handlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		called <- ctx
		return big, nil
	}), WithWriteTimeout(10*time.Minute), WithIdleTimeout(time.Hour))
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })

	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4 << 10) //nolint:errcheck
	if _, err := io.WriteString(c, post+"Content-Length: 1\r\n\r\nx"); err != nil {
		t.Fatal(err)
	}
	hctx := <-called
	testenv.Eventually(t, time.Minute, "the answer's write blocked on the caller", func() bool {
		return testenv.BlockedIn("transport.(*serverConn).handle")
	})
	var conns []*serverConn
	srv.mu.Lock()
	for sc := range srv.conns {
		conns = append(conns, sc)
	}
	srv.mu.Unlock()
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want %v (the write was still in flight)", err, context.DeadlineExceeded)
		}
	case <-time.After(2 * time.Minute): // far below the 10-minute write timeout
		t.Fatal("Shutdown did not return after its context ended: it waits for the blocked write")
	}
	select {
	case <-hctx.Done():
	default:
		t.Error("the handler's context was not cancelled when Shutdown cut the connection")
	}
	if !testenv.Closed(t, conns[0].nc) {
		t.Error("the connection is still open after Shutdown")
	}
	testenv.Eventually(t, 2*time.Minute, "the connection's goroutine ended", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns) == 0
	})
}
