package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/apipb"
	"google.golang.org/protobuf/types/known/typepb"

	brokermemory "github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry"
	regmemory "github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/internal/testenv"
)

type Request struct {
	Name string `json:"name"`
}

type Response struct {
	Msg string `json:"msg"`
}

// Test is the handler the tests serve.
type Test struct {
	blocked chan struct{} // Block closes it when it starts
	release chan struct{} // Block returns when it is closed
}

func (*Test) Hello(ctx context.Context, req *Request, rsp *Response) error {
	rsp.Msg = "Hello " + req.Name
	return nil
}

func (*Test) Panic(ctx context.Context, req *Request, rsp *Response) error {
	panic("boom " + req.Name)
}

func (*Test) Slow(ctx context.Context, req *Request, rsp *Response) error {
	<-ctx.Done()
	return ctx.Err()
}

func (*Test) Fail(ctx context.Context, req *Request, rsp *Response) error {
	return rpcerr.Forbidden("", "not for %s", req.Name)
}

func (*Test) Plain(ctx context.Context, req *Request, rsp *Response) error {
	return errors.New("plain failure")
}

// Context reports what the handler's context carries.
func (*Test) Context(ctx context.Context, req *Request, rsp *Response) error {
	md, _ := metadata.FromContext(ctx)
	dl, ok := ctx.Deadline()
	rsp.Msg = md["Micro-User-Id"]
	if ok && time.Until(dl) > 0 && time.Until(dl) <= 10*time.Second {
		rsp.Msg += " with deadline"
	}
	return nil
}

func (t *Test) Block(ctx context.Context, req *Request, rsp *Response) error {
	close(t.blocked)
	<-t.release
	rsp.Msg = "released"
	return nil
}

func (*Test) Proto(ctx context.Context, req *apipb.Method, rsp *apipb.Method) error {
	rsp.Name = req.Name + "!"
	rsp.ResponseTypeUrl = "type.example/x"
	return nil
}

// NotAHandler has the wrong form and is not published.
func (*Test) NotAHandler(s string) error { return nil }

const name = "test.srv"

func start(t *testing.T, opts ...server.Option) (*server.Server, *Test) {
	t.Helper()
	h := &Test{blocked: make(chan struct{}), release: make(chan struct{})}
	s, err := server.New(append([]server.Option{server.WithName(name)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(h); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx) //nolint:errcheck // some tests stop it themselves
	})
	return s, h
}

func newClient(t *testing.T) *client.Client {
	c, err := client.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func hello(t *testing.T, c *client.Client, addr string) {
	t.Helper()
	var rsp Response
	if err := c.Call(context.Background(), name, "Test.Hello", &Request{Name: "John"}, &rsp, client.WithAddress(addr)); err != nil {
		t.Fatalf("Test.Hello: %v", err)
	}
	if rsp.Msg != "Hello John" {
		t.Fatalf("Test.Hello answered %q", rsp.Msg)
	}
}

func TestCalls(t *testing.T) {
	s, _ := start(t)
	c := newClient(t)
	addr := s.Address()
	hello(t, c, addr)

	var p apipb.Method
	for _, ct := range []string{"application/json", "application/protobuf"} {
		if err := c.Call(context.Background(), name, "Test.Proto", &apipb.Method{Name: "x"}, &p,
			client.WithAddress(addr), client.WithContentType(ct)); err != nil || p.Name != "x!" {
			t.Errorf("Test.Proto over %s = %v, %v", ct, &p, err)
		}
	}

	var raw json.RawMessage
	if err := c.Call(context.Background(), name, "Test.Hello", json.RawMessage(`{"name":"Raw"}`), &raw, client.WithAddress(addr)); err != nil || string(raw) != `{"msg":"Hello Raw"}` {
		t.Errorf("raw JSON call = %s, %v", raw, err)
	}

	var rsp Response
	ctx := metadata.NewContext(context.Background(), metadata.Metadata{"micro-user-id": "U42"})
	if err := c.Call(ctx, name, "Test.Context", &Request{}, &rsp, client.WithAddress(addr)); err != nil || rsp.Msg != "U42 with deadline" {
		t.Errorf("handler context: %q, %v; want metadata and the caller's deadline", rsp.Msg, err)
	}
}

func TestHealthBothCodecs(t *testing.T) {
	s, _ := start(t)
	c := newClient(t)
	for _, ct := range []string{"application/json", "application/protobuf"} {
		var rsp server.HealthResponse
		err := c.Call(context.Background(), name, server.HealthEndpoint, &server.HealthRequest{}, &rsp,
			client.WithAddress(s.Address()), client.WithContentType(ct))
		if err != nil || rsp.Status != "ok" {
			t.Errorf("Debug.Health over %s = %q, %v", ct, rsp.Status, err)
		}
	}
	// On the protobuf wire the answer is a message with string field 1, as
	// go.micro.debug.HealthResponse: a generated message of that shape
	// (google.protobuf.Option: string name = 1) reads it.
	var opt typepb.Option
	err := c.Call(context.Background(), name, server.HealthEndpoint, &typepb.Option{}, &opt,
		client.WithAddress(s.Address()), client.WithContentType("application/protobuf"))
	if err != nil || opt.Name != "ok" {
		t.Errorf("Debug.Health read as a generated message = %v, %v", &opt, err)
	}
	// And in JSON with a plain HTTP client.
	req, _ := http.NewRequest("POST", "http://"+s.Address()+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Micro-Endpoint", "Debug.Health")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != `{"status":"ok"}` {
		t.Errorf("Debug.Health over plain HTTP = %s", b)
	}
}

func TestHealthWire(t *testing.T) {
	b, _ := (&server.HealthResponse{Status: "ok"}).MarshalProto()
	if !bytes.Equal(b, []byte{0x0a, 0x02, 'o', 'k'}) {
		t.Errorf("HealthResponse wire = %x", b)
	}
	var r server.HealthResponse
	// unknown varint field 2 then status: skipped, then read.
	if err := r.UnmarshalProto([]byte{0x10, 0x01, 0x0a, 0x02, 'o', 'k'}); err != nil || r.Status != "ok" {
		t.Errorf("UnmarshalProto = %q, %v", r.Status, err)
	}
	if err := r.UnmarshalProto([]byte{0x0a, 0x05, 'o'}); err == nil {
		t.Error("UnmarshalProto of a truncated message: no error")
	}
	if err := new(server.HealthRequest).UnmarshalProto([]byte{0xff}); err == nil {
		t.Error("HealthRequest.UnmarshalProto of garbage: no error")
	}
}

// TestBadInput: every kind of bad call gets a clear error and the server
// still serves afterwards.
func TestBadInput(t *testing.T) {
	s, _ := start(t, server.WithMaxBodySize(64<<10))
	c := newClient(t)
	addr := s.Address()
	tests := []struct {
		name     string
		endpoint string
		req      any
		opts     []client.CallOption
		code     int32
		detail   string
	}{
		{"unknown endpoint", "Test.Nope", &Request{}, nil, 404, "unknown endpoint Test.Nope of service test.srv"},
		{"malformed body", "Test.Hello", json.RawMessage(`{"name": 5}`), nil, 400,
			"malformed request for Test.Hello: json: cannot unmarshal number into Go struct field Request.name of type string"},
		{"malformed protobuf", "Test.Proto", json.RawMessage(`{"nope": 1}`), nil, 400, `malformed request for Test.Proto: proto:`},
		{"handler panic", "Test.Panic", &Request{Name: "x"}, nil, 500, "handler Test.Panic panicked: boom x"},
		{"handler error", "Test.Fail", &Request{Name: "Bob"}, nil, 403, "not for Bob"},
		{"plain handler error", "Test.Plain", &Request{}, nil, 500, "plain failure"},
		{"handler exceeds the caller's timeout", "Test.Slow", &Request{}, []client.CallOption{client.WithRequestTimeout(300 * time.Millisecond)},
			408, "call to test.srv Test.Slow timed out after 300ms"},
		{"oversize body", "Test.Hello", &Request{Name: strings.Repeat("x", 100<<10)}, nil, 413,
			"request body for Test.Hello is larger than the limit of 64 KiB"},
		{"client cannot encode", "Test.Hello", &Request{}, []client.CallOption{client.WithContentType("application/protobuf")}, 400,
			"call to test.srv Test.Hello: encoding the request as application/protobuf: application/protobuf cannot encode *server_test.Request"},
		{"client content type unknown", "Test.Hello", &Request{}, []client.CallOption{client.WithContentType("text/plain")}, 415,
			`call to test.srv Test.Hello: unsupported content type "text/plain"; supported: application/json, application/protobuf`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Call(context.Background(), name, tt.endpoint, tt.req, &Response{}, append([]client.CallOption{client.WithAddress(addr)}, tt.opts...)...)
			var e *rpcerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %#v is not an *rpcerr.Error", err)
			}
			if e.Code != tt.code || !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("error = %d %q, want %d containing %q", e.Code, e.Detail, tt.code, tt.detail)
			}
			hello(t, c, addr)
		})
	}

	// Wrong service name, wrong content type: with a plain HTTP client, as
	// any caller could send them.
	raw := []struct {
		name, service, contentType string
		status                     int
		detail                     string
	}{
		{"wrong content type", name, "text/plain", 415,
			`unsupported content type "text/plain" for Test.Hello; supported: application/json, application/protobuf`},
		{"wrong service", "other.srv", "application/json", 404, "service other.srv: not served here (this node serves test.srv)"},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(`{"name":"x"}`))
			req.Header.Set("Content-Type", tt.contentType)
			req.Header.Set("Micro-Service", tt.service)
			req.Header.Set("Micro-Endpoint", "Test.Hello")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			e := rpcerr.Parse(res.Header.Get("Micro-Error"))
			if res.StatusCode != tt.status || e.Code != int32(tt.status) || e.Detail != tt.detail || e.ID != name {
				t.Errorf("got %d %+v, want %d %q", res.StatusCode, e, tt.status, tt.detail)
			}
			hello(t, c, addr)
		})
	}
}

func TestPanicIsLoggedWithStack(t *testing.T) {
	var logs testenv.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)

	s, _ := start(t)
	c := newClient(t)
	c.Call(context.Background(), name, "Test.Panic", &Request{Name: "logged"}, nil, client.WithAddress(s.Address())) //nolint:errcheck
	out := logs.String()
	for _, want := range []string{"handler panicked", "endpoint=Test.Panic", "boom logged", "server_test.(*Test).Panic"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	s, _ := start(t)
	c := newClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32*20)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				var rsp Response
				who := strings.Repeat("x", g) + string(rune('a'+i))
				if err := c.Call(context.Background(), name, "Test.Hello", &Request{Name: who}, &rsp, client.WithAddress(s.Address())); err != nil {
					errs <- err
				} else if rsp.Msg != "Hello "+who {
					errs <- errors.New("crossed answer: " + rsp.Msg + " for " + who)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStopDrainsInFlight(t *testing.T) {
	s, h := start(t)
	c := newClient(t)
	addr := s.Address()
	result := make(chan error, 1)
	var rsp Response
	go func() {
		result <- c.Call(context.Background(), name, "Test.Block", &Request{}, &rsp, client.WithAddress(addr), client.WithRequestTimeout(30*time.Second))
	}()
	<-h.blocked
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- s.Stop(ctx)
	}()
	// New calls are refused while the in-flight one drains.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Call(context.Background(), name, "Test.Hello", &Request{}, nil, client.WithAddress(addr), client.WithRequestTimeout(2*time.Second))
		if err != nil && strings.Contains(err.Error(), "unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still accepts calls while stopping: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the in-flight call finished", err)
	default:
	}
	close(h.release)
	if err := <-result; err != nil || rsp.Msg != "released" {
		t.Errorf("in-flight call = %q, %v; want it to finish", rsp.Msg, err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop = %v", err)
	}
}

func TestStopCutsOffAtDeadline(t *testing.T) {
	s, h := start(t)
	c := newClient(t)
	go c.Call(context.Background(), name, "Test.Block", &Request{}, nil, client.WithAddress(s.Address()), client.WithRequestTimeout(30*time.Second)) //nolint:errcheck
	<-h.blocked
	defer close(h.release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); err == nil || !strings.Contains(err.Error(), "in-flight requests cut off") {
		t.Errorf("Stop = %v, want an error saying in-flight requests were cut off", err)
	}
}

func TestHandleErrors(t *testing.T) {
	s, err := server.New(server.WithName(name))
	if err != nil {
		t.Fatal(err)
	}
	type Empty struct{}
	tests := []struct {
		name string
		h    any
		opts []server.HandlerOption
		want string
	}{
		{"no handler method", &Empty{}, nil, "has no method of the form"},
		{"not a struct", func() {}, nil, "want a struct"},
		{"Debug is taken", &Test{}, []server.HandlerOption{server.WithHandlerName("Debug")}, "the name Debug is taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Handle(tt.h, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handle = %v, want %q", err, tt.want)
			}
		})
	}
	if err := s.Handle(&Test{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(&Test{}); err == nil || !strings.Contains(err.Error(), "the name Test is taken") {
		t.Errorf("second Handle of Test = %v", err)
	}
	nameless, err := server.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := nameless.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no name") {
		t.Errorf("Start without a name = %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tt := range []struct {
		opt  server.Option
		want string
	}{
		{server.WithMaxBodySize(-1), "negative max body size"},
		{server.WithRegisterTTL(-time.Second), "negative register TTL"},
		{server.WithAdvertise("10.0.0.1"), `advertised address "10.0.0.1": want host:port`},
	} {
		if s, err := server.New(server.WithName(name), tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) || s != nil {
			t.Errorf("New = %v, %v; want an error containing %q", s, err, tt.want)
		}
	}
}

type Inner struct {
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

type Recursive struct {
	Name string     `json:"name"`
	Next *Recursive `json:"next"`
}

type Schema struct {
	Inner
	ID       int64           `json:"id"`
	Skipped  string          `json:"-"`
	private  string          //nolint:unused // must not be published
	Untagged bool            // published under its Go name
	Items    []Inner         `json:"items"`
	Raw      json.RawMessage `json:"raw"`
	Data     []byte          `json:"data"`
	Loop     *Recursive      `json:"loop"`
}

type Schemas struct{}

func (Schemas) Go(ctx context.Context, req *Schema, rsp *Response) error { return nil }

func (Schemas) Proto(ctx context.Context, req *apipb.Api, rsp *apipb.Method) error { return nil }

func TestEndpointSchemas(t *testing.T) {
	s, err := server.New(server.WithName(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(Schemas{}, server.WithEndpointMetadata(map[string]string{"owner": "ops"})); err != nil {
		t.Fatal(err)
	}
	eps := map[string]*registry.Endpoint{}
	var names []string
	for _, e := range s.Endpoints() {
		eps[e.Name] = e
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "Debug.Health,Schemas.Go,Schemas.Proto" {
		t.Fatalf("endpoints %s", got)
	}
	goEp := eps["Schemas.Go"]
	if goEp.Metadata["owner"] != "ops" || goEp.Metadata["stream"] != "false" {
		t.Errorf("endpoint metadata %v", goEp.Metadata)
	}
	got := flatten(goEp.Request, "")
	want := []string{
		"Schema:Schema", ".tags:[]string", ".attrs:map[string]string", ".id:int64", ".Untagged:bool",
		".items:[]Inner", ".items.tags:[]string", ".items.attrs:map[string]string",
		".raw:json", ".data:bytes", ".loop:Recursive", ".loop.name:string", ".loop.next:Recursive",
		".loop.next.name:string", ".loop.next.next:Recursive", ".loop.next.next.name:string",
		".loop.next.next.next:Recursive", ".loop.next.next.next.name:string", ".loop.next.next.next.next:Recursive",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Go schema:\n got %v\nwant %v", got, want)
	}
	if got := flatten(goEp.Response, ""); strings.Join(got, " ") != "Response:Response .msg:string" {
		t.Errorf("response schema %v", got)
	}
	pr := strings.Join(flatten(eps["Schemas.Proto"].Request, ""), " ")
	for _, want := range []string{"Api:Api", ".name:string", ".methods:[]Method", ".methods.requestTypeUrl:string",
		".methods.requestStreaming:bool", ".methods.syntax:Syntax", ".sourceContext:SourceContext", ".sourceContext.fileName:string"} {
		if !strings.Contains(" "+pr+" ", " "+want+" ") {
			t.Errorf("proto schema lacks %s: %s", want, pr)
		}
	}
	h := strings.Join(flatten(eps["Debug.Health"].Response, ""), " ")
	if h != "HealthResponse:HealthResponse .status:string" {
		t.Errorf("health schema %s", h)
	}
}

func flatten(v *registry.Value, prefix string) []string {
	if v == nil {
		return nil
	}
	var out []string
	if prefix == "" {
		out = append(out, v.Name+":"+v.Type)
		prefix = "."
		for _, c := range v.Values {
			out = append(out, flatten(c, prefix)...)
		}
		return out
	}
	out = append(out, prefix+v.Name+":"+v.Type)
	for _, c := range v.Values {
		out = append(out, flatten(c, prefix+v.Name+".")...)
	}
	return out
}

// WithMaxConns reaches the transport: with one connection held, another
// caller gets a clear 503 naming the limit.
func TestMaxConns(t *testing.T) {
	s, _ := start(t, server.WithMaxConns(1))
	held := newClient(t)
	hello(t, held, s.Address()) // its pooled connection stays open
	c := newClient(t)
	err := c.Call(context.Background(), name, "Test.Hello", &Request{Name: "x"}, &Response{}, client.WithAddress(s.Address()))
	var e *rpcerr.Error
	if !errors.As(err, &e) || e.Code != 503 || !strings.Contains(e.Detail, "too many connections to this server (limit 1)") {
		t.Fatalf("a second caller: %v; want a 503 about the connection limit", err)
	}
	held.Close()
	testenv.Eventually(t, 20*time.Second, "the second caller served", func() bool {
		return c.Call(context.Background(), name, "Test.Hello", &Request{Name: "x"}, &Response{}, client.WithAddress(s.Address())) == nil
	})
}

// TestNodeMetadata: a node says what go-micro v1's nodes say of themselves
// (protocol=mucp makes go-micro's client speak its current protocol to it),
// and lists its content types, which marks it as microbot's.
func TestNodeMetadata(t *testing.T) {
	r := regmemory.New()
	s, err := server.New(server.WithName("go.micro.srv.md"), server.WithRegistry(r), server.WithBroker(brokermemory.New()),
		server.WithMetadata(map[string]string{"team": "ops"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background()) //nolint:errcheck
	svcs, err := r.GetService(context.Background(), "go.micro.srv.md")
	if err != nil {
		t.Fatal(err)
	}
	md := svcs[0].Nodes[0].Metadata
	want := map[string]string{"protocol": "mucp", "server": "mucp", "transport": "http", "registry": "memory", "broker": "memory",
		"content_types": "application/json, application/protobuf", "team": "ops"}
	if len(md) != len(want) {
		t.Errorf("metadata %v, want %v", md, want)
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, md[k], v, md)
		}
	}
}
