package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/rpcerr"
)

// The files in testdata are real go-micro traffic, captured on loopback:
//
//	gomicro-v1.8.0-client-*.http      requests of go-micro v1.8.0's client
//	                                  (tools/gomicro) calling Say.Hello
//	                                  {name: "John"}: to a node with
//	                                  protocol=mucp in protobuf and JSON, to
//	                                  a node without it (proto-rpc, json-rpc)
//	gomicro-v0.10.0-client-*.http     requests of go-micro v0.10.0's client
//	                                  (tools/gomicro/v0): no Micro-* fields,
//	                                  the old framings under
//	                                  application/octet-stream and
//	                                  application/json
//	gomicro-v1.8.0-server-*.answer    answers of go-micro v1.8.0's greeter:
//	                                  Say.Hello, then Say.Fail (a 409), after
//	                                  which it closed the connection
//	gomicro-v0.10.0-server-*.answer   answers of go-micro v0.10.0's greeter
//	                                  to the v0.10.0 client's requests, and
//	                                  to Say.Fail in JSON-RPC
func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// helloHandler answers Say.Hello as the greeters do, in either codec, and
// Say.Fail with a 409; it sends what it saw to got.
func helloHandler(got chan<- seen) Handler {
	return handlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		got <- see(ctx, req)
		switch req.Endpoint {
		case "Say.Fail":
			return nil, rpcerr.New("go.micro.srv.greeter", "no", 409)
		case "Say.Plain":
			return nil, errors.New("plain\nfailure")
		}
		if req.ContentType == "application/json" {
			return []byte(`{"msg":"Hello John"}`), nil
		}
		return []byte("\n\nHello John"), nil // Response{msg: "Hello John"}
	})
}

// exchangeAll sends raw requests on one connection and returns the answers
// (as net/http reads them, the way go-micro's client does) and their
// bodies; a closed connection ends the list.
func exchangeAll(t *testing.T, addr string, reqs ...[]byte) ([]*http.Response, [][]byte) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	var rsps []*http.Response
	var bodies [][]byte
	for _, r := range reqs {
		if _, err := nc.Write(r); err != nil {
			t.Fatal(err)
		}
		rsp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(rsp.Body)
		rsps, bodies = append(rsps, rsp), append(bodies, b)
	}
	return rsps, bodies
}

// TestGoMicroCallers: requests as go-micro's clients write them reach the
// handler with the service, endpoint, message, timeout and metadata they
// carry, and are answered as go-micro's servers answer them: framed as
// they came, with status 200 for errors too; the connection stays open
// after an error.
func TestGoMicroCallers(t *testing.T) {
	got := make(chan seen, 10)
	addr := serveRPC(t, helloHandler(got), WithErrorID("go.micro.srv.greeter"))
	protoHello := []byte("\n\x04John")
	tests := []struct {
		file     string
		service  string
		ct       string // the message's type, as the handler sees it
		body     []byte
		framing  Framing
		from     string // the metadata the client added
		wantCT   string // the answer's Content-Type
		wantBody []byte // the answer's body; nil: the golden answer of a real go-micro server
		golden   string
	}{
		{"gomicro-v1.8.0-client-protobuf.http", "go.micro.srv.capture", "application/protobuf", protoHello, FramingPlain,
			"go.micro.client.gomicro", "application/protobuf", []byte("\n\nHello John"), ""},
		{"gomicro-v1.8.0-client-json.http", "go.micro.srv.capture", "application/json", []byte(`{"name":"John"}` + "\n"), FramingPlain,
			"go.micro.client.gomicro", "application/json", []byte(`{"msg":"Hello John"}`), ""},
		{"gomicro-v1.8.0-client-proto-rpc.http", "go.micro.srv.captureold", "application/protobuf", protoHello, FramingProtoRPC,
			"go.micro.client.gomicro", "application/proto-rpc", nil, ""},
		{"gomicro-v1.8.0-client-json-rpc.http", "go.micro.srv.captureold", "application/json", []byte(`{"name":"John"}`), FramingJSONRPC,
			"go.micro.client.gomicro", "application/json-rpc", []byte(`{"id":"3","result":{"msg":"Hello John"},"error":null}` + "\n"), ""},
		{"gomicro-v0.10.0-client-octet-stream.http", "", "application/protobuf", protoHello, FramingProtoRPC,
			"go.micro.client.gomicro.v0", "application/octet-stream", nil, "gomicro-v0.10.0-server-proto-rpc.answer"},
		{"gomicro-v0.10.0-client-json.http", "", "application/json", []byte(`{"name":"John"}`), FramingJSONRPC,
			"go.micro.client.gomicro.v0", "application/json", nil, "gomicro-v0.10.0-server-json-rpc.answer"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			req := testdata(t, tt.file)
			rsps, bodies := exchangeAll(t, addr, req, req)
			if len(rsps) != 2 {
				t.Fatalf("%d answers to 2 requests on one connection", len(rsps))
			}
			s := <-got
			<-got
			if s.req.Service != tt.service || s.req.Endpoint != "Say.Hello" || s.req.ContentType != tt.ct ||
				!bytes.Equal(s.req.Body, tt.body) || !s.req.GoMicro || s.req.Framing != tt.framing {
				t.Errorf("handler saw %+v (%q)", s.req, s.req.Body)
			}
			if s.md["Micro-From-Service"] != tt.from && s.md["X-Micro-From-Service"] != tt.from {
				t.Errorf("metadata %q, want go-micro's Micro-From-Service %q", s.md, tt.from)
			}
			if s.deadline <= 4*time.Second || s.deadline > 5*time.Second {
				t.Errorf("deadline in %v, want go-micro's 5 s (Timeout: 5000000000)", s.deadline)
			}
			rsp := rsps[0]
			if rsp.StatusCode != 200 || rsp.Header.Get("Content-Type") != tt.wantCT || rsp.Close {
				t.Errorf("answer %s, Content-Type %q, close %v", rsp.Status, rsp.Header.Get("Content-Type"), rsp.Close)
			}
			want := tt.wantBody
			if tt.golden != "" {
				g, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(testdata(t, tt.golden))), nil)
				if err != nil {
					t.Fatal(err)
				}
				want, _ = io.ReadAll(g.Body)
			}
			if want == nil { // the v0.10.0 server's answer, with this request's sequence number
				want = appendProtoRPC(nil, envelope{method: "Say.Hello", seq: 2}, true, []byte("\n\nHello John"))
			}
			if !bytes.Equal(bodies[0], want) {
				t.Errorf("answer body\n %q\nwant (as go-micro's server writes it)\n %q", bodies[0], want)
			}
		})
	}

	// Errors: status 200, the error in Micro-Error and X-Micro-Error (and in
	// the frame), the connection kept.
	fail := func(file string) []byte {
		b := testdata(t, file)
		i := bytes.Index(b, []byte("\r\n\r\n"))
		return bytes.ReplaceAll(b[:i], []byte("Say.Hello"), []byte("Say.Fail")) // the body is unchanged for the plain framings
	}
	errJSON := `{"id":"go.micro.srv.greeter","code":409,"detail":"no","status":"Conflict"}`
	for _, tt := range []struct {
		name string
		req  []byte
		body string
	}{
		{"protobuf", append(fail("gomicro-v1.8.0-client-protobuf.http"), "\r\n\r\n\n\x04John"...), ""},
		{"json", append(fail("gomicro-v1.8.0-client-json.http"), "\r\n\r\n"+`{"name":"John"}`+"\n"...), ""},
		{"json-rpc", withBody(t, "gomicro-v0.10.0-client-json.http", `{"method":"Say.Fail","params":[{"name":"John"}],"id":1}`),
			`{"id":1,"result":null,"error":` + jsonString(errJSON) + "}\n"},
		{"proto-rpc", withBody(t, "gomicro-v0.10.0-client-octet-stream.http",
			string(appendProtoRPC(nil, envelope{method: "Say.Fail", seq: 9}, false, []byte("\n\x04John")))),
			string(appendProtoRPC(nil, envelope{method: "Say.Fail", seq: 9, err: errJSON}, true, nil))},
	} {
		t.Run("error "+tt.name, func(t *testing.T) {
			rsps, bodies := exchangeAll(t, addr, tt.req, tt.req)
			<-got
			if len(rsps) != 2 {
				t.Fatalf("%d answers to 2 requests on one connection (it must stay open after an error)", len(rsps))
			}
			<-got
			rsp := rsps[0]
			if rsp.StatusCode != 200 || rsp.Header.Get("Micro-Error") != errJSON || rsp.Header.Get("X-Micro-Error") != errJSON || string(bodies[0]) != tt.body {
				t.Errorf("answer %s %q %q body %q", rsp.Status, rsp.Header.Get("Micro-Error"), rsp.Header.Get("X-Micro-Error"), bodies[0])
			}
		})
	}
}

func jsonString(s string) string { return string(appendJSONString(nil, s)) }

// TestGoMicroPlainErrors: a handler's plain Go error reaches go-micro
// callers as go-micro's servers send it, its text alone, which go-micro's
// client reads as an error without a code and does not send again (it
// retries 500s); microbot's callers get the 500.
func TestGoMicroPlainErrors(t *testing.T) {
	got := make(chan seen, 10)
	addr := serveRPC(t, helloHandler(got), WithErrorID("go.micro.srv.greeter"))
	b := testdata(t, "gomicro-v1.8.0-client-protobuf.http")
	goMicro := bytes.ReplaceAll(b, []byte("Say.Hello"), []byte("Say.Plain"))
	rsps, _ := exchangeAll(t, addr, goMicro)
	<-got
	if len(rsps) != 1 || rsps[0].StatusCode != 200 || rsps[0].Header.Get("Micro-Error") != "plain failure" {
		t.Fatalf("go-micro caller got %+v", rsps)
	}
	rsps, _ = exchangeAll(t, addr, []byte("POST / HTTP/1.1\r\nHost: x\r\nMicro-Endpoint: Say.Plain\r\nContent-Length: 0\r\n\r\n"))
	<-got
	e := rpcerr.Parse(rsps[0].Header.Get("Micro-Error"))
	if rsps[0].StatusCode != 500 || e.Code != 500 || e.Detail != "plain\nfailure" {
		t.Fatalf("microbot caller got %d %+v", rsps[0].StatusCode, e)
	}
}

// withBody returns the captured request file with another body (and its
// length).
func withBody(t *testing.T, file, body string) []byte {
	b := testdata(t, file)
	i := bytes.Index(b, []byte("\r\n\r\n"))
	var out []byte
	for _, line := range strings.Split(string(b[:i]), "\r\n") {
		if strings.HasPrefix(line, "Content-Length:") {
			line = "Content-Length: " + strconv.Itoa(len(body))
		}
		out = append(out, line+"\r\n"...)
	}
	return append(append(out, "\r\n"...), body...)
}

// TestMicrobotCallersUnchanged: our own callers still get errors as their
// HTTP status, and a body without any naming field is go-micro's old
// framing only under go-micro's content types.
func TestMicrobotCallersUnchanged(t *testing.T) {
	got := make(chan seen, 10)
	addr := serveRPC(t, helloHandler(got), WithErrorID("svc"))
	for _, tt := range []struct {
		name, req string
		status    int
		errPart   string
	}{
		{"microbot", "POST / HTTP/1.1\r\nHost: x\r\nMicro-Endpoint: Say.Fail\r\nContent-Length: 0\r\n\r\n", 409, "no"},
		{"json without endpoint", "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 200,
			`no endpoint named: set the Micro-Endpoint header`},
		{"proto-rpc garbage", "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto-rpc\r\nContent-Length: 2\r\n\r\nab", 200,
			"bad application/proto-rpc body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rsps, _ := exchangeAll(t, addr, []byte(tt.req))
			if len(rsps) != 1 {
				t.Fatal("no answer")
			}
			e := rpcerr.Parse(rsps[0].Header.Get("Micro-Error"))
			if rsps[0].StatusCode != tt.status || !strings.Contains(e.Detail, tt.errPart) {
				t.Errorf("status %d, error %q; want %d and %q", rsps[0].StatusCode, e.Detail, tt.status, tt.errPart)
			}
		})
	}
}

// replay is a fake node answering each request on a connection with the
// next answer of a list, closing the connection when an answer is marked
// so; it counts the connections and requests it saw.
type replay struct {
	addr string
	mu   sync.Mutex
	conn int
	reqs []*http.Request
}

type answer struct {
	raw   []byte
	close bool
}

func newReplay(t *testing.T, answers ...answer) *replay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &replay{addr: ln.Addr().String()}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conn++
			r.mu.Unlock()
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					req.Body = io.NopCloser(bytes.NewReader(body))
					r.mu.Lock()
					n := len(r.reqs)
					r.reqs = append(r.reqs, req)
					r.mu.Unlock()
					a := answers[n%len(answers)]
					nc.Write(a.raw)
					if a.close {
						return
					}
				}
			}()
		}
	}()
	return r
}

func (r *replay) stats() (conns int, reqs []*http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn, append([]*http.Request(nil), r.reqs...)
}

// TestGoMicroNodes: the client reads what real go-micro servers answer, and
// does not use a connection again after a go-micro v1.8.0 server answered
// an error (it closes the connection without saying so): the next call
// works on a new connection.
func TestGoMicroNodes(t *testing.T) {
	c := NewClient()
	defer c.Close()
	ctx := context.Background()

	t.Run("v1.8.0 error then close", func(t *testing.T) {
		node := newReplay(t,
			answer{raw: testdata(t, "gomicro-v1.8.0-server-ok.answer")},
			answer{raw: testdata(t, "gomicro-v1.8.0-server-error-close.answer"), close: true})
		req := &Request{Service: "go.micro.srv.greeter", Endpoint: "Say.Hello", ContentType: "application/protobuf",
			GoMicro: true, Timeout: 5 * time.Second, Metadata: metadata.Metadata{"Micro-User-Id": "U1"}, Body: []byte("\n\x04John")}
		for i, want := range []string{"ok", "error", "ok", "error", "ok"} {
			rsp, err := c.Send(ctx, node.addr, req)
			switch want {
			case "ok":
				if err != nil || string(rsp.Body) != "\n\nHello John" {
					t.Fatalf("call %d: %v %+v", i, err, rsp)
				}
				rsp.Release()
			case "error":
				var e *rpcerr.Error
				if !errors.As(err, &e) || e.Code != 409 || e.Detail != "no" || e.ID != "go.micro.srv.greeter" {
					t.Fatalf("call %d: %#v, want go-micro's 409", i, err)
				}
			}
		}
		conns, reqs := node.stats()
		if conns != 3 || len(reqs) != 5 {
			t.Fatalf("%d connections for %d requests; want a new one after each error (3 for 5)", conns, len(reqs))
		}
		h := reqs[0].Header
		for k, v := range map[string]string{
			"Micro-Service": "go.micro.srv.greeter", "Micro-Endpoint": "Say.Hello", "Micro-Method": "Say.Hello",
			"X-Micro-Service": "go.micro.srv.greeter", "X-Micro-Method": "Say.Hello", "Timeout": "5000000000",
			"Micro-User-Id": "U1", "Content-Type": "application/protobuf",
		} {
			if h.Get(k) != v {
				t.Errorf("request field %s = %q, want %q (all: %v)", k, h.Get(k), v, h)
			}
		}
		if h.Get("Micro-Id") == "" || h.Get("Micro-Id") != h.Get("X-Micro-Id") {
			t.Errorf("Micro-Id %q, X-Micro-Id %q", h.Get("Micro-Id"), h.Get("X-Micro-Id"))
		}
	})

	t.Run("v0.10.0 framings", func(t *testing.T) {
		for _, tt := range []struct {
			framing Framing
			answer  string
			ct      string
			want    string
			code    int32
		}{
			{FramingProtoRPC, "gomicro-v0.10.0-server-proto-rpc.answer", "application/proto-rpc", "\n\nHello John", 0},
			{FramingJSONRPC, "gomicro-v0.10.0-server-json-rpc.answer", "application/json-rpc", `{"msg":"Hello John"}`, 0},
			{FramingJSONRPC, "gomicro-v0.10.0-server-json-rpc-error.answer", "application/json-rpc", "", 409},
		} {
			node := newReplay(t, answer{raw: testdata(t, tt.answer)})
			ct := "application/protobuf"
			body := []byte("\n\x04John")
			if tt.framing == FramingJSONRPC {
				ct, body = "application/json", []byte(`{"name":"John"}`)
			}
			rsp, err := c.Send(ctx, node.addr, &Request{Service: "go.micro.srv.old", Endpoint: "Say.Hello", ContentType: ct,
				Framing: tt.framing, Body: body})
			if tt.code != 0 {
				var e *rpcerr.Error
				if !errors.As(err, &e) || e.Code != tt.code || e.Detail != "John" {
					t.Fatalf("%s: %#v, want the frame's error", tt.answer, err)
				}
				continue
			}
			if err != nil || string(rsp.Body) != tt.want || rsp.ContentType != ct {
				t.Fatalf("%s: %v, %+v", tt.answer, err, rsp)
			}
			rsp.Release()
			_, reqs := node.stats()
			b, _ := io.ReadAll(reqs[0].Body)
			var gotBody, gotMethod string
			if tt.framing == FramingProtoRPC {
				env, msg, err := parseProtoRPC(b)
				if err != nil || env.seq == 0 {
					t.Fatalf("request frame %q: %v", b, err)
				}
				gotBody, gotMethod = string(msg), env.method
			} else {
				m, id, msg, err := parseJSONRPCRequest(b)
				if err != nil || len(id) == 0 {
					t.Fatalf("request frame %q: %v", b, err)
				}
				gotBody, gotMethod = string(msg), m
			}
			if reqs[0].Header.Get("Content-Type") != tt.ct || gotMethod != "Say.Hello" || gotBody != string(body) {
				t.Errorf("request %s %q: method %q body %q", reqs[0].Header.Get("Content-Type"), b, gotMethod, gotBody)
			}
		}
	})
}

func TestFraming(t *testing.T) {
	// Round trips.
	env := envelope{method: "Say.Hello", seq: 1<<63 + 5, err: "x"}
	b := appendProtoRPC(nil, env, true, []byte("msg"))
	if got, msg, err := parseProtoRPC(b); err != nil || got != env || string(msg) != "msg" {
		t.Fatalf("proto-rpc round trip: %+v %q %v", got, msg, err)
	}
	b = appendJSONRPCRequest(nil, "Say.\"Hello\"", 7, []byte(`{"a":1}`))
	if m, id, msg, err := parseJSONRPCRequest(b); err != nil || m != `Say."Hello"` || string(id) != "7" || string(msg) != `{"a":1}` {
		t.Fatalf("json-rpc request round trip: %q %q %q %v", m, id, msg, err)
	}
	b = appendJSONRPCAnswer(nil, []byte(`"7"`), nil, "boom\n")
	if res, e, err := parseJSONRPCAnswer(b); err != nil || e != "boom\n" || string(res) != "null" {
		t.Fatalf("json-rpc answer round trip: %q %q %v", res, e, err)
	}

	// What does not parse says so, and never panics.
	for _, bad := range [][]byte{
		nil, {0, 0}, {0, 0, 0, 9, 1}, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		append([]byte{0, 0, 0, 2, 0x0a, 0x05}, 0, 0, 0, 0),       // string longer than the envelope
		append([]byte{0, 0, 0, 2, 0x11, 0x00}, 0, 0, 0, 0),       // fixed64 cut short
		append([]byte{0, 0, 0, 1, 0x80}, 0, 0, 0, 0),             // tag cut short
		append([]byte{0, 0, 0, 2, 0x0b, 0x00}, 0, 0, 0, 0),       // group start
		append([]byte{0, 0, 0, 3, 0x0a, 0x01, 'x'}, 0, 0, 0, 10), // message cut short
	} {
		if _, _, err := parseProtoRPC(bad); err == nil {
			t.Errorf("parseProtoRPC(%q) = nil error", bad)
		}
	}
	for _, bad := range []string{``, `[]`, `{"method":"A.B"}`, `{"method":"A.B","params":[1,2],"id":1}`, `{"params":`} {
		if _, _, _, err := parseJSONRPCRequest([]byte(bad)); err == nil {
			t.Errorf("parseJSONRPCRequest(%q) = nil error", bad)
		}
	}
	for _, tt := range []struct {
		in      string
		errText string
		isErr   bool
	}{
		{`{"id":1,"result":{},"error":null}`, "", false},
		{`{"id":1,"result":null,"error":""}`, "unspecified error", false},
		{`{"id":1,"error":{"code":1}}`, "", true},
		{`not json`, "", true},
	} {
		_, e, err := parseJSONRPCAnswer([]byte(tt.in))
		if e != tt.errText || (err != nil) != tt.isErr {
			t.Errorf("parseJSONRPCAnswer(%s) = %q, %v", tt.in, e, err)
		}
	}
	if !reflect.DeepEqual(mediaType("Application/JSON; charset=utf-8"), "application/json") {
		t.Error("mediaType")
	}
}
