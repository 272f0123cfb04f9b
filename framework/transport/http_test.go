package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// exchange writes in on a new connection to addr and returns everything
// the server sends until it closes the connection (10 s at most).
func exchange(t *testing.T, addr, in string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	go io.WriteString(c, in)                        //nolint:errcheck // a refused body may not be read whole
	out, _ := io.ReadAll(c)
	return string(out)
}

const post = "POST / HTTP/1.1\r\nHost: x\r\nMicro-Endpoint: A.B\r\nContent-Type: application/json\r\n"

func TestHTTP11(t *testing.T) {
	got := make(chan seen, 100)
	addr := serveRPC(t, echoHandler(got), WithErrorID("svc"), WithMaxBodySize(100))
	tests := []struct {
		name string
		in   string
		want []string // in order in the output
		not  []string
	}{
		{"pipelined requests answered in order",
			post + "Content-Length: 2\r\n\r\nr1" + post + "Content-Length: 2\r\nConnection: close\r\n\r\nr2",
			[]string{"HTTP/1.1 200 OK", "echo:r1", "HTTP/1.1 200 OK", "Connection: close", "echo:r2"}, nil},
		{"HTTP/1.0 closes after the answer",
			strings.Replace(post, "HTTP/1.1", "HTTP/1.0", 1) + "Content-Length: 1\r\n\r\nx",
			[]string{"HTTP/1.1 200 OK", "Connection: close", "echo:x"}, nil},
		{"chunked body",
			post + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "Content-Length: 10", "echo:abcde"}, nil},
		{"expect 100-continue",
			post + "Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
			[]string{"HTTP/1.1 100 Continue", "HTTP/1.1 200 OK", "echo:ok"}, nil},
		{"expect 100-continue with a body over the limit",
			post + "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
			[]string{"HTTP/1.1 413 Request Entity Too Large", "Connection: close", "larger than the limit of 100 bytes"},
			[]string{"100 Continue"}},
		{"malformed request line", "HELLO\r\n\r\n",
			[]string{"HTTP/1.1 400 Bad Request", "Micro-Error: {", "bad HTTP request"}, nil},
		{"unknown version", "POST / HTTP/2.0\r\n\r\n", []string{"400 Bad Request", "version"}, nil},
		{"bad header line", post + "no colon here\r\n\r\n", []string{"400 Bad Request", "header line"}, nil},
		{"two lengths", post + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nx", []string{"400 Bad Request", "Content-Length"}, nil},
		{"length and chunked", post + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", []string{"400 Bad Request"}, nil},
		{"other transfer coding", post + "Transfer-Encoding: gzip\r\n\r\n", []string{"501 Not Implemented", "only chunked"}, nil},
		{"bad chunk", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", []string{"400 Bad Request", "chunk size"}, nil},
		{"chunked over the limit", post + "Transfer-Encoding: chunked\r\n\r\n65\r\n" + strings.Repeat("x", 101) + "\r\n0\r\n\r\n",
			[]string{"413 Request Entity Too Large"}, nil},
		{"header section too large", post + "X-Big: " + strings.Repeat("y", 2<<20) + "\r\n\r\n",
			[]string{"431 Request Header Fields Too Large"}, nil},
		{"GET", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", []string{"405 Method Not Allowed", "Allow: POST"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := exchange(t, addr, tt.in)
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("answer lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("answer holds %q:\n%s", n, out)
				}
			}
		})
	}
}

// TestNetHTTPClient: any HTTP client can call, with the keep-alive
// connection reused.
func TestNetHTTPClient(t *testing.T) {
	got := make(chan seen, 10)
	addr := serveRPC(t, echoHandler(got))
	hc := &http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader("hi"))
		req.Header.Set("Micro-Endpoint", "A.B")
		req.Header.Set("Micro-Meta-User", "U1")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "echo:hi" || res.Header.Get("Date") == "" {
			t.Fatalf("call %d: %d %q %v", i, res.StatusCode, b, res.Header)
		}
		if s := <-got; s.md["User"] != "U1" {
			t.Errorf("metadata %v", s.md)
		}
	}
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	got := make(chan seen, 10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(echoHandler(got))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))      //nolint:errcheck
	io.WriteString(c, post+"Content-Length: 1\r\n\r\nx") //nolint:errcheck
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("first call: %v %v", res, err)
	}
	io.Copy(io.Discard, res.Body) //nolint:errcheck

	// The connection is idle now: Shutdown closes it and returns without
	// waiting for its context to end.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection after Shutdown: read %d, %v; want EOF", n, err)
	}
}

// canned serves each connection by reading one request header and writing
// answer, then closing.
func canned(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, answer) //nolint:errcheck
			}()
		}
	}()
	return ln.Addr().String()
}

func TestClientReadsAnyResponse(t *testing.T) {
	c := NewClient()
	defer c.Close()
	tests := []struct {
		name, answer, body, err string
	}{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n", "abc", ""},
		{"until close", "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}", "{}", ""},
		{"1xx first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", "z", ""},
		{"five 1xx", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5) + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", "z", ""},
		{"six 1xx", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", "", "more than 5 informational"},
		{"closed after 1xx", "HTTP/1.1 100 Continue\r\n\r\n", "", "unexpected EOF"},
		{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", "", "both Content-Length and Transfer-Encoding"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nzz", "", "Content-Length"},
		{"other transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nz", "", "transfer coding not supported"},
		{"error header", "HTTP/1.1 404 Not Found\r\nMicro-Error: {\"id\":\"s\",\"code\":404,\"detail\":\"nope\"}\r\nContent-Length: 0\r\n\r\n", "", "s: nope"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n", "", "not an HTTP/1.x response"},
		{"plain 404", "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope", "", `unexpected HTTP status "404 Not Found" (not a microbot node?): "nope"`},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "", "unexpected EOF"},
		{"no answer", "", "", "connection closed before any response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := canned(t, tt.answer)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.Send(ctx, addr, &Request{Endpoint: "A.B"})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Send = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil || string(res.Body) != tt.body {
				t.Fatalf("Send = %v, %v; want body %q", res, err, tt.body)
			}
		})
	}
}

// TestStaleConnection: a pooled connection the server closed while it sat
// idle is noticed and replaced, not used for the next call.
func TestStaleConnection(t *testing.T) {
	got := make(chan seen, 10)
	addr := serveRPC(t, echoHandler(got), WithIdleTimeout(50*time.Millisecond))
	c := NewClient()
	defer c.Close()
	for i := range 2 {
		if _, err := c.Send(context.Background(), addr, &Request{Endpoint: "A.B", Body: []byte("x")}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		time.Sleep(staleAfter + 200*time.Millisecond) // the server closes the idle connection meanwhile
	}
}

// TestEndlessInformational: a server answering "100 Continue" forever
// fails that call with a clear error after a few of them (it used to
// recurse once per answer until the stack overflowed, killing the caller),
// and the client goes on serving other calls.
func TestEndlessInformational(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
				go io.Copy(io.Discard, c)                       //nolint:errcheck
				continues := []byte(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 64))
				for {
					if _, err := c.Write(continues); err != nil {
						return
					}
				}
			}()
		}
	}()
	good := serveRPC(t, echoHandler(make(chan seen, 10)))

	c := NewClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Send(ctx, ln.Addr().String(), &Request{Endpoint: "A.B"})
	var se *SendError
	if !errors.As(err, &se) || se.NotSent || !strings.Contains(err.Error(), "informational") {
		t.Fatalf("Send = %v; want a *SendError about informational answers", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Send waited for its context to end: %v", err)
	}
	res, err := c.Send(ctx, good, &Request{Endpoint: "A.B", Body: []byte("x")})
	if err != nil || string(res.Body) != "echo:x" {
		t.Fatalf("next call to a good server: %v, %v", res, err)
	}
}
