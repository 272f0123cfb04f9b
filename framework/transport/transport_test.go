package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/rpcerr"
)

// handlerFunc adapts a function to Handler.
type handlerFunc func(ctx context.Context, req *Request) ([]byte, error)

func (f handlerFunc) ServeRPC(ctx context.Context, req *Request) ([]byte, error) { return f(ctx, req) }

// serveRPC runs a Server for h on a loopback listener until the test ends
// and returns its address.
func serveRPC(t *testing.T, h Handler, opts ...ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, opts...)
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// serve runs a plain net/http handler (not a microbot node) on a loopback
// listener until the test ends and returns its address.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// seen is what the echo handler saw of a call.
type seen struct {
	req      Request
	md       metadata.Metadata
	deadline time.Duration
}

// see returns what a handler sees of a call.
func see(ctx context.Context, req *Request) seen {
	s := seen{req: *req}
	s.req.Body = append([]byte(nil), req.Body...)
	s.md, _ = metadata.FromContext(ctx)
	if dl, ok := ctx.Deadline(); ok {
		s.deadline = time.Until(dl)
	}
	return s
}

func echoHandler(got chan<- seen) Handler {
	return handlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		got <- see(ctx, req)
		switch string(req.Body) {
		case "fail":
			return nil, rpcerr.NotFound("", "no such thing")
		case "plain":
			return nil, errors.New("plain failure")
		case "panic":
			panic("transport-level boom")
		}
		return append([]byte("echo:"), req.Body...), nil
	})
}

func TestRoundTrip(t *testing.T) {
	got := make(chan seen, 1)
	addr := serveRPC(t, echoHandler(got), WithErrorID("svc"))
	c := NewClient()
	defer c.Close()

	md := metadata.Metadata{"Micro-User-Id": "U1", "Name": "José 100% \n ok"}
	rsp, err := c.Send(context.Background(), addr, &Request{
		Service: "svc", Endpoint: "A.B", ContentType: "application/protobuf",
		Metadata: md, Timeout: 3 * time.Second, Body: []byte("hi"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Release()
	if string(rsp.Body) != "echo:hi" || rsp.ContentType != "application/protobuf" {
		t.Errorf("response %q (%s)", rsp.Body, rsp.ContentType)
	}
	s := <-got
	if s.req.Service != "svc" || s.req.Endpoint != "A.B" || string(s.req.Body) != "hi" {
		t.Errorf("server saw %+v", s.req)
	}
	for k, v := range md {
		if s.md[k] != v {
			t.Errorf("metadata %s = %q, want %q (all: %q)", k, s.md[k], v, s.md)
		}
	}
	if s.deadline <= 0 || s.deadline > 3*time.Second {
		t.Errorf("handler deadline in %v, want within the caller's 3s", s.deadline)
	}
}

func TestErrors(t *testing.T) {
	got := make(chan seen, 10)
	addr := serveRPC(t, echoHandler(got), WithErrorID("svc"), WithMaxBodySize(10))
	c := NewClient()
	defer c.Close()
	tests := []struct {
		name   string
		req    Request
		code   int32
		detail string
	}{
		{"handler error", Request{Endpoint: "A.B", Body: []byte("fail")}, 404, "no such thing"},
		{"plain error is 500 with the service id", Request{Endpoint: "A.B", Body: []byte("plain")}, 500, "plain failure"},
		{"panic outside the handlers", Request{Endpoint: "A.B", Body: []byte("panic")}, 500, "A.B panicked: transport-level boom"},
		{"oversize", Request{Endpoint: "A.B", Body: bytes.Repeat([]byte("x"), 11)}, 413,
			"request body for A.B is larger than the limit of 10 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Send(context.Background(), addr, &tt.req)
			var e *rpcerr.Error
			if !errors.As(err, &e) || e.Code != tt.code || e.Detail != tt.detail || e.ID != "svc" {
				t.Fatalf("error = %#v, want code %d detail %q id svc", err, tt.code, tt.detail)
			}
		})
	}
	// The server still answers afterwards.
	if _, err := c.Send(context.Background(), addr, &Request{Endpoint: "A.B", Body: []byte("ok")}); err != nil {
		t.Fatalf("after errors: %v", err)
	}
}

// TestWire checks the wire format with a plain HTTP client, as curl would.
func TestWire(t *testing.T) {
	got := make(chan seen, 10)
	addr := serveRPC(t, echoHandler(got), WithErrorID("svc"), WithMaxBodySize(10))
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		body    io.Reader
		status  int
		errPart string
	}{
		{"GET", "GET", nil, nil, 405, "method GET not allowed"},
		{"bad timeout", "POST", map[string]string{"Micro-Timeout": "soon"}, strings.NewReader("x"), 400, "bad Micro-Timeout header"},
		{"bad metadata", "POST", map[string]string{"Micro-Meta-X": "%zz"}, strings.NewReader("x"), 400, "bad metadata header Micro-Meta-X"},
		// A chunked body has no Content-Length: the limit is found while reading.
		{"chunked oversize", "POST", nil, io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("abc")), 413, "larger than the limit"},
		{"ok", "POST", map[string]string{"Micro-Endpoint": "A.B"}, strings.NewReader("x"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+addr+"/", tt.body)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tt.status, b)
			}
			if tt.errPart == "" {
				return
			}
			e := rpcerr.Parse(res.Header.Get(HeaderError))
			if !strings.Contains(e.Detail, tt.errPart) || string(b) != e.Marshal() {
				t.Errorf("error header %q body %q, want detail containing %q and the same JSON as body", res.Header.Get(HeaderError), b, tt.errPart)
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	c := NewClient()
	defer c.Close()

	// A port nobody listens on: connection refused, never sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, err = c.Send(context.Background(), dead, &Request{})
	var se *SendError
	if !errors.As(err, &se) || !se.NotSent {
		t.Errorf("to a closed port: %#v, want a SendError with NotSent", err)
	}

	// A server that reads the request and hangs up: it may have been handled.
	hangup := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) //nolint:errcheck
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	_, err = c.Send(context.Background(), hangup, &Request{Body: []byte("x")})
	if !errors.As(err, &se) || se.NotSent {
		t.Errorf("from a server that hung up: %#v, want a SendError without NotSent", err)
	}

	// Something that is not a microbot node.
	other := serve(t, http.NotFoundHandler())
	_, err = c.Send(context.Background(), other, &Request{})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "not a microbot node") {
		t.Errorf("from a plain web server: %v", err)
	}

	// Invalid metadata key: refused before sending.
	_, err = c.Send(context.Background(), other, &Request{Metadata: metadata.Metadata{"bad key": "x"}})
	if !errors.As(err, &se) || !se.NotSent || !strings.Contains(err.Error(), `"bad key"`) {
		t.Errorf("bad metadata key: %v", err)
	}
}

func TestTimeoutCancelsHandler(t *testing.T) {
	done := make(chan error, 1)
	addr := serveRPC(t, handlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		select {
		case <-ctx.Done():
			done <- ctx.Err()
		case <-time.After(20 * time.Second):
			done <- nil
		}
		return nil, ctx.Err()
	}))
	c := NewClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// Either the caller's deadline or the handler's answer comes first.
	_, err := c.Send(ctx, addr, &Request{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(fmt.Sprint(err), "deadline exceeded") {
		t.Errorf("Send = %v, want deadline exceeded", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("handler was not cancelled")
		}
	case <-time.After(15 * time.Second):
		t.Error("handler still running 15s after the caller's deadline")
	}
}

func TestEncodeValue(t *testing.T) {
	for _, v := range []string{"", "plain ascii", "100%", "a\r\nb", "José", "\x00\x7f\xff"} {
		enc := encodeValue(v)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] >= 0x7f {
				t.Errorf("encodeValue(%q) = %q holds byte %#x", v, enc, enc[i])
			}
		}
		dec, err := decodeValue(enc)
		if err != nil || dec != v {
			t.Errorf("decodeValue(encodeValue(%q)) = %q, %v", v, dec, err)
		}
	}
	if encodeValue("plain") != "plain" {
		t.Error("plain ASCII must pass unchanged")
	}
}
