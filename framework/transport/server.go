package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/rpcerr"
)

// Defaults of a Server.
const (
	// DefaultMaxBodySize is the default limit of a request body (4 MiB).
	DefaultMaxBodySize = 4 << 20
	// DefaultIdleTimeout bounds both the wait for the next request on a
	// keep-alive connection and the reading of one request.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultWriteTimeout bounds the writing of responses to a caller that
	// does not read them.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxConns is the default limit of open connections; more are
	// refused with a 503.
	DefaultMaxConns = 1024
)

// maxRefusing bounds the connections being refused at once (each is
// answered and closed within refuseTimeout); beyond, they are closed
// without an answer.
const (
	maxRefusing   = 64
	refuseTimeout = time.Second
)

// maxErrorHeader bounds the Micro-Error header; longer details are cut.
const maxErrorHeader = 8 << 10

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("transport: server closed")

// Handler answers calls that arrived over the wire.
type Handler interface {
	// ServeRPC answers req. ctx carries the request's metadata and the
	// caller's deadline, and is cancelled when the server is closed. It
	// returns the response body, encoded in req.ContentType, or an error; an
	// error that is not an *rpcerr.Error is sent as a 500. req.Body is only
	// valid until ServeRPC returns.
	ServeRPC(ctx context.Context, req *Request) ([]byte, error)
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// MaxBodySize is the largest request body accepted (default 4 MiB).
	MaxBodySize int64
	// ErrorID is the id of the errors the transport itself answers with
	// (bad headers, oversize bodies): the service's name.
	ErrorID string
	// IdleTimeout bounds the wait for, and the reading of, a request.
	IdleTimeout time.Duration
	// WriteTimeout bounds the writing of responses.
	WriteTimeout time.Duration
	// MaxConns is how many connections may be open at once (default
	// DefaultMaxConns). One more is answered with a 503 (Micro-Error "too
	// many connections") and closed.
	MaxConns int
	// Logger gets connection-level problems (default slog.Default()).
	Logger *slog.Logger
}

// ServerOption sets a ServerOptions field.
type ServerOption func(*ServerOptions)

// WithMaxBodySize sets the largest request body accepted.
func WithMaxBodySize(n int64) ServerOption { return func(o *ServerOptions) { o.MaxBodySize = n } }

// WithErrorID sets the id of the transport's own errors.
func WithErrorID(id string) ServerOption { return func(o *ServerOptions) { o.ErrorID = id } }

// WithIdleTimeout bounds the wait for, and the reading of, a request.
func WithIdleTimeout(d time.Duration) ServerOption {
	return func(o *ServerOptions) { o.IdleTimeout = d }
}

// WithWriteTimeout bounds the writing of responses.
func WithWriteTimeout(d time.Duration) ServerOption {
	return func(o *ServerOptions) { o.WriteTimeout = d }
}

// WithMaxConns sets how many connections may be open at once; more are
// refused with a 503.
func WithMaxConns(n int) ServerOption { return func(o *ServerOptions) { o.MaxConns = n } }

// WithLogger sets where connection-level problems are logged.
func WithLogger(l *slog.Logger) ServerOption { return func(o *ServerOptions) { o.Logger = l } }

// Server serves the wire format over HTTP/1.1: one goroutine per
// connection, requests answered in order (pipelined requests too, with
// their responses written together), keep-alive by default.
type Server struct {
	h      Handler
	opts   ServerOptions
	ctx    context.Context // base of every handler's context; ends with Close
	cancel context.CancelFunc

	date atomic.Pointer[dateValue] // Date header of the current second

	refusal  []byte        // the whole answer to a connection over MaxConns
	refusing chan struct{} // a token per connection being refused
	refused  atomic.Int64  // connections refused since the last log line
	loggedAt atomic.Int64  // when a refusal was last logged (Unix ns)

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*serverConn]struct{}
	shutting atomic.Bool    // set once by Shutdown or Close
	wg       sync.WaitGroup // connections
}

// NewServer returns a Server passing calls to h.
func NewServer(h Handler, opts ...ServerOption) *Server {
	o := ServerOptions{
		MaxBodySize:  DefaultMaxBodySize,
		IdleTimeout:  DefaultIdleTimeout,
		WriteTimeout: DefaultWriteTimeout,
	}
	for _, f := range opts {
		f(&o)
	}
	if o.MaxBodySize <= 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{h: h, opts: o, ctx: ctx, cancel: cancel,
		lns: map[net.Listener]struct{}{}, conns: map[*serverConn]struct{}{},
		refusal: refusal(o), refusing: make(chan struct{}, maxRefusing)}
}

// refusal returns the answer to a connection over the limit.
func refusal(o ServerOptions) []byte {
	js := rpcerr.New(o.ErrorID, fmt.Sprintf("too many connections to this server (limit %d): try again later", o.MaxConns),
		http.StatusServiceUnavailable).Marshal()
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n%s: %s\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n%s", HeaderError, js, len(js), js)
}

// Serve accepts connections on ln until Shutdown or Close, then returns
// ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.opts.Logger.Warn("accept failed; retrying", "in", backoff, "err", err)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		sc := &serverConn{s: s, nc: nc, state: stateIdle}
		sc.ctx, sc.cancel = context.WithCancel(s.ctx)
		s.mu.Lock()
		if s.shutting.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		if len(s.conns) >= s.opts.MaxConns {
			s.wg.Add(1)
			s.mu.Unlock()
			s.refuse(nc)
			continue
		}
		s.conns[sc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go sc.serve()
	}
}

// refuse answers a connection over MaxConns with a 503 and closes it, on a
// goroutine of its own that ends within refuseTimeout; when maxRefusing are
// already being refused, it closes it at once. It logs the refusals, at
// most one line every 10 s. s.wg counts it.
func (s *Server) refuse(nc net.Conn) {
	n := s.refused.Add(1)
	now := time.Now().UnixNano()
	if last := s.loggedAt.Load(); now-last >= int64(10*time.Second) && s.loggedAt.CompareAndSwap(last, now) {
		s.refused.Add(-n)
		s.opts.Logger.Warn("transport: connections refused: the server is at its connection limit",
			"limit", s.opts.MaxConns, "refused", n, "remote", nc.RemoteAddr())
	}
	select {
	case s.refusing <- struct{}{}:
	default:
		nc.Close()
		s.wg.Done()
		return
	}
	go func() {
		defer func() { <-s.refusing; s.wg.Done() }()
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(refuseTimeout)) //nolint:errcheck // a broken conn fails the write
		if _, err := nc.Write(s.refusal); err != nil {
			return
		}
		// Read what the caller sends meanwhile (its request), so that
		// closing does not reset the connection before it reads the answer.
		if tc, ok := nc.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()                 //nolint:errcheck
			io.CopyN(io.Discard, nc, 1<<20) //nolint:errcheck
		}
	}()
}

// Shutdown stops accepting, closes idle connections, lets the requests in
// flight finish (their connections close after the response) and waits for
// them until ctx is done; then it closes everything and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	for ln := range s.lns {
		ln.Close()
	}
	for sc := range s.conns {
		sc.mu.Lock()
		if sc.state == stateIdle {
			sc.nc.SetReadDeadline(aLongTimeAgo) //nolint:errcheck // wakes its goroutine
		}
		sc.mu.Unlock()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		// Handlers that ignore their (now cancelled) context may still
		// run; their connections are closed and they are not waited for.
		s.Close()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, and cancels the
// contexts of the handlers still running.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	for ln := range s.lns {
		ln.Close()
	}
	for sc := range s.conns {
		sc.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	return nil
}

// Connection states, under serverConn.mu.
const (
	stateIdle   = iota // waiting for the first byte of a request
	stateActive        // reading, handling or answering a request
)

type serverConn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	lr     lineReader
	ctx    context.Context // base of its handlers' contexts
	cancel context.CancelFunc
	mu     sync.Mutex // guards state against Shutdown
	state  int
	// deadlines currently set on nc
	readDeadline, writeDeadline time.Time
	req                         request  // the request being served, reused
	num                         [20]byte // scratch for numbers
	// last strings seen, reused when the next request repeats them
	lastService, lastEndpoint, lastCT string
}

// request is what readRequest found in a request's header.
type request struct {
	Request
	header
	method         string
	expectContinue bool
	err            *rpcerr.Error // a header the transport refuses
	// go-micro's
	wireType string     // the Content-Type as sent, echoed in answers
	id       []byte     // JSON-RPC id, echoed in the answer
	env      envelope   // proto-rpc envelope of the request
	named    bool       // the header names a service, endpoint or method
	fields   []rawField // other header fields: go-micro's metadata
}

// rawField is a header field a go-micro caller may have sent as metadata.
type rawField struct{ name, value string }

func (sc *serverConn) serve() {
	s := sc.s
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logger.Error("transport: connection handler panicked", "remote", sc.nc.RemoteAddr(), "panic", r)
		}
		sc.nc.Close()
		sc.cancel()
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	sc.br = bufio.NewReaderSize(sc.nc, 8<<10)
	sc.bw = bufio.NewWriterSize(sc.nc, 8<<10)
	sc.lr.br = sc.br
	for {
		if sc.br.Buffered() == 0 {
			if !sc.toIdle() {
				return
			}
			if _, err := sc.br.Peek(1); err != nil {
				return // closed, idle too long, or shut down while idle
			}
			// Bytes of a request arrived: serve it even if the server is
			// shutting down meanwhile (the response then closes the
			// connection).
			sc.toActive()
		}
		if !sc.serveOne() {
			sc.lingeringClose()
			return
		}
	}
}

// toIdle marks the connection idle, waiting for a request, and refreshes
// its read deadline if less than half the idle timeout is left (deadlines
// are not set per request: that costs a timer change each). It returns
// false if the connection must close instead: the server is shutting down.
// It holds the connection's lock so Shutdown's wake-up cannot be
// overwritten.
func (sc *serverConn) toIdle() bool {
	s := sc.s
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	sc.state = stateIdle
	now := time.Now()
	if now.Add(s.opts.IdleTimeout / 2).After(sc.readDeadline) {
		sc.readDeadline = now.Add(s.opts.IdleTimeout)
		sc.nc.SetReadDeadline(sc.readDeadline) //nolint:errcheck // a broken conn fails the read
	}
	return true
}

// toActive marks the connection as busy with a request. If Shutdown woke
// it meanwhile, its read deadline is put back so the request that arrived
// can be read and served.
func (sc *serverConn) toActive() {
	sc.mu.Lock()
	sc.state = stateActive
	if sc.s.shutting.Load() {
		sc.readDeadline = time.Now().Add(sc.s.opts.IdleTimeout)
		sc.nc.SetReadDeadline(sc.readDeadline) //nolint:errcheck
	}
	sc.mu.Unlock()
}

// refreshWriteDeadline sets the write deadline if less than half the write
// timeout is left. Every response calls it before its first byte is
// written (a write can reach the connection at once: a body larger than
// the buffer, or a full buffer), so no write waits longer than the write
// timeout for a caller that does not read.
func (sc *serverConn) refreshWriteDeadline() {
	now := time.Now()
	if now.Add(sc.s.opts.WriteTimeout / 2).After(sc.writeDeadline) {
		sc.writeDeadline = now.Add(sc.s.opts.WriteTimeout)
		sc.nc.SetWriteDeadline(sc.writeDeadline) //nolint:errcheck // a broken conn fails the write
	}
}

// serveOne reads, handles and answers one request. It returns false when the
// connection must close.
func (sc *serverConn) serveOne() bool {
	s := sc.s
	req, err := sc.readRequest()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isTimeout(err) || isReset(err) {
			return false
		}
		code := int32(http.StatusBadRequest)
		switch {
		case errors.Is(err, errHeaderTooLarge):
			code = http.StatusRequestHeaderFieldsTooLarge
		case errors.Is(err, errUnsupportedCoding):
			code = http.StatusNotImplemented
		}
		sc.writeError(rpcerr.New(s.opts.ErrorID, "bad HTTP request: "+err.Error(), code), false)
		return false
	}
	keep := req.keepAlive
	if req.err != nil { // refused before its body: the connection cannot be reused
		sc.writeError(req.err, false)
		return false
	}
	if req.length > s.opts.MaxBodySize {
		sc.writeError(sc.tooLarge(&req.Request), false)
		return false
	}
	if req.expectContinue {
		sc.refreshWriteDeadline()
		sc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n") //nolint:errcheck // seen at Flush
		if err := sc.bw.Flush(); err != nil {
			return false
		}
	}
	buf := getBuf()
	body := (*buf)[:0]
	if req.chunked {
		body, err = readChunked(&sc.lr, body, s.opts.MaxBodySize)
	} else if req.length > 0 {
		body = grow(body, int(req.length))
		_, err = io.ReadFull(sc.br, body)
		err = unexpected(err)
	}
	if err != nil {
		putBuf(buf)
		switch {
		case errors.Is(err, errTooLarge):
			sc.writeError(sc.tooLarge(&req.Request), false)
		case errors.Is(err, errMalformed):
			sc.writeError(rpcerr.BadRequest(s.opts.ErrorID, "bad HTTP request body: %v", err), false)
		}
		return false
	}
	req.Body = body
	switch {
	case req.method != http.MethodPost:
		keep = sc.writeError(rpcerr.New(s.opts.ErrorID, "method "+req.method+" not allowed: calls are POST requests",
			http.StatusMethodNotAllowed), keep)
	case req.Framing != FramingPlain:
		if e := req.unframe(s.opts.ErrorID); e != nil {
			keep = sc.writeError(e, keep)
			break
		}
		keep = sc.handle(&req.Request, keep)
	default:
		keep = sc.handle(&req.Request, keep)
	}
	*buf = body
	putBuf(buf)
	sc.req = request{}                  // keeps nothing of it (metadata, body) while idle
	if sc.br.Buffered() == 0 || !keep { // nothing pipelined behind: send now
		sc.refreshWriteDeadline()
		if err := sc.bw.Flush(); err != nil {
			return false
		}
	}
	return keep
}

// handle runs the handler and writes its answer; it returns whether the
// connection stays open: not after a failed write (a caller that does not
// read, past the write timeout), even with requests pipelined behind.
func (sc *serverConn) handle(req *Request, keep bool) bool {
	ctx := sc.ctx // per connection: deriving from one shared context contends
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	if req.Metadata != nil {
		ctx = metadata.NewContext(ctx, req.Metadata)
	}
	rsp, err := sc.serveRPC(ctx, req)
	if keep && sc.s.shutting.Load() {
		keep = false
	}
	if err != nil {
		e := rpcerr.FromError(err)
		if e.ID == "" {
			e.ID = sc.s.opts.ErrorID
		}
		return sc.writeError(e, keep)
	}
	if req.GoMicro {
		return sc.writeGoMicro(rsp, "", keep)
	}
	sc.refreshWriteDeadline() // a large rsp goes straight to the connection
	bw := sc.bw
	bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: ") //nolint:errcheck // seen at Flush
	bw.WriteString(req.ContentType)                     //nolint:errcheck
	sc.writeCommon(len(rsp), keep)                      //nolint:errcheck
	if _, err := bw.Write(rsp); err != nil {            // the error of any write above sticks
		return false
	}
	return keep
}

// serveRPC calls the handler, turning a panic into a 500.
func (sc *serverConn) serveRPC(ctx context.Context, req *Request) (rsp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			sc.s.opts.Logger.Error("transport: handler panicked", "endpoint", req.Endpoint, "panic", r, "stack", string(debug.Stack()))
			e := rpcerr.InternalServerError(sc.s.opts.ErrorID, "%s panicked: %v", endpointName(req), r)
			e.Plain = true
			rsp, err = nil, e
		}
	}()
	return sc.s.h.ServeRPC(ctx, req)
}

// writeCommon writes Content-Length, Date, Connection and the end of the
// header.
func (sc *serverConn) writeCommon(n int, keep bool) {
	bw := sc.bw
	bw.WriteString("\r\nContent-Length: ")
	bw.Write(strconv.AppendInt(sc.num[:0], int64(n), 10))
	bw.WriteString("\r\nDate: ")    //nolint:errcheck
	bw.WriteString(sc.s.httpDate()) //nolint:errcheck
	if !keep {
		bw.WriteString("\r\nConnection: close") //nolint:errcheck
	}
	bw.WriteString("\r\n\r\n") //nolint:errcheck
}

// writeError writes e as the answer: its code as status, its JSON in the
// Micro-Error header and as the body; to a go-micro caller, as go-micro's
// servers do (see writeGoMicro). It returns keep.
func (sc *serverConn) writeError(e *rpcerr.Error, keep bool) bool {
	js := e.Marshal()
	if len(js) > maxErrorHeader {
		cut := *e
		cut.Detail = cut.Detail[:min(len(cut.Detail), maxErrorHeader/2)] + " …(cut)"
		js = cut.Marshal()
	}
	if sc.req.GoMicro {
		if e.Plain { // as go-micro's servers send a plain error: its text
			js = plainText(e.Detail)
		}
		return sc.writeGoMicro(nil, js, keep)
	}
	status := int(e.Code)
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	sc.refreshWriteDeadline() // the header and body may not fit the buffer
	bw := sc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(sc.num[:0], int64(status), 10))
	bw.WriteByte(' ')                       //nolint:errcheck
	bw.WriteString(http.StatusText(status)) //nolint:errcheck
	if status == http.StatusMethodNotAllowed {
		bw.WriteString("\r\nAllow: POST") //nolint:errcheck
	}
	bw.WriteString("\r\nContent-Type: application/json\r\n" + HeaderError + ": ") //nolint:errcheck
	bw.WriteString(js)                                                            //nolint:errcheck
	sc.writeCommon(len(js), keep)
	if _, err := bw.WriteString(js); err != nil { // the error of any write above sticks
		return false
	}
	if !keep {
		bw.Flush() //nolint:errcheck // closing anyway
	}
	return keep
}

// writeGoMicro answers the current request, a go-micro caller's, as
// go-micro's servers do: status 200 whether it succeeded or not (go-micro's
// client takes any other status for a broken transport and sends the call
// again), the Content-Type as sent, the error's JSON errJS (if any) in
// Micro-Error and X-Micro-Error, and the message rsp, in the request's
// framing. It returns keep.
func (sc *serverConn) writeGoMicro(rsp []byte, errJS string, keep bool) bool {
	req := &sc.req
	body := rsp
	var buf *[]byte
	switch req.Framing {
	case FramingProtoRPC:
		buf = getBuf()
		env := req.env
		env.err = errJS
		body = appendProtoRPC((*buf)[:0], env, true, rsp)
	case FramingJSONRPC:
		buf = getBuf()
		body = appendJSONRPCAnswer((*buf)[:0], req.id, rsp, errJS)
	}
	sc.refreshWriteDeadline() // a large body goes straight to the connection
	bw := sc.bw
	bw.WriteString("HTTP/1.1 200 OK") //nolint:errcheck // seen at the last write
	if req.wireType != "" && validValue(req.wireType) {
		bw.WriteString("\r\nContent-Type: ") //nolint:errcheck
		bw.WriteString(req.wireType)         //nolint:errcheck
	}
	if errJS != "" {
		bw.WriteString("\r\n" + HeaderError + ": ")   //nolint:errcheck
		bw.WriteString(errJS)                         //nolint:errcheck
		bw.WriteString("\r\nX-" + HeaderError + ": ") //nolint:errcheck
		bw.WriteString(errJS)                         //nolint:errcheck
	}
	sc.writeCommon(len(body), keep)
	_, err := bw.Write(body) // the error of any write above sticks
	if buf != nil {
		*buf = body
		putBuf(buf)
	}
	if err != nil {
		return false
	}
	if !keep {
		bw.Flush() //nolint:errcheck // closing anyway
	}
	return keep
}

// plainText makes s a header value: control characters become spaces (as
// net/http writes them), and it is cut to maxErrorHeader.
func plainText(s string) string {
	if len(s) > maxErrorHeader {
		s = s[:maxErrorHeader/2] + " …(cut)"
	}
	if validValue(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

func (sc *serverConn) tooLarge(req *Request) *rpcerr.Error {
	return rpcerr.RequestEntityTooLarge(sc.s.opts.ErrorID,
		"request body for %s is larger than the limit of %s", endpointName(req), formatSize(sc.s.opts.MaxBodySize))
}

// lingeringClose half-closes the connection and reads what the caller still
// sends for a moment, so an answer sent before the request was read whole
// (413) reaches the caller instead of being lost to a TCP reset.
func (sc *serverConn) lingeringClose() {
	sc.refreshWriteDeadline()
	sc.bw.Flush() //nolint:errcheck
	if tc, ok := sc.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()                                               //nolint:errcheck
		sc.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond)) //nolint:errcheck
		io.CopyN(io.Discard, sc.br, 64<<20)                           //nolint:errcheck
	}
}

// readRequest reads a request line and header section.
func (sc *serverConn) readRequest() (*request, error) {
	lr := &sc.lr
	lr.count = 0
	line, err := lr.line()
	if err != nil {
		return nil, err
	}
	// Like net/http, ignore empty lines before a request line (RFC 9112 2.2).
	for len(line) == 0 {
		if line, err = lr.line(); err != nil {
			return nil, err
		}
	}
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	_, version, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(method) == 0 {
		return nil, fmt.Errorf("%w: request line %.60q", errMalformed, line)
	}
	sc.req = request{}
	req := &sc.req
	switch string(version) {
	case "HTTP/1.1":
		req.keepAlive = true
	case "HTTP/1.0":
	default:
		return nil, fmt.Errorf("%w: version %.20q (want HTTP/1.1)", errMalformed, version)
	}
	if string(method) == http.MethodPost {
		req.method = http.MethodPost
	} else {
		req.method = string(method)
	}
	if err := lr.readHeader(&req.header, sc.requestField); err != nil {
		return nil, err
	}
	req.classify()
	return req, nil
}

// classify decides from the whole header how the request is framed and
// answered: an old-framing Content-Type, or a body whose header names no
// service, endpoint or method (go-micro before v0.22 carried the method in
// the body, framed by the Content-Type), is framed; a framed request, or one
// with go-micro's marks, is go-micro's, whose header fields other than the
// transport's are its metadata.
func (req *request) classify() {
	req.wireType = req.ContentType
	switch mediaType(req.ContentType) {
	case ContentTypeProtoRPC:
		req.Framing = FramingProtoRPC
	case ContentTypeJSONRPC:
		req.Framing = FramingJSONRPC
	default:
		if f, ok := oldFraming(req.ContentType); ok && !req.named {
			req.Framing = f
		}
	}
	if req.Framing != FramingPlain {
		req.GoMicro = true
		req.ContentType = req.Framing.payloadType()
	}
	if req.GoMicro && len(req.fields) > 0 {
		if req.Metadata == nil {
			req.Metadata = make(metadata.Metadata, len(req.fields))
		}
		for _, f := range req.fields {
			if _, ok := req.Metadata[f.name]; !ok { // Micro-Meta-* wins
				req.Metadata[f.name] = f.value
			}
		}
	}
	req.fields = nil
}

// unframe takes the method and the message out of a framed body.
func (req *request) unframe(id string) *rpcerr.Error {
	var method string
	switch req.Framing {
	case FramingProtoRPC:
		env, msg, err := parseProtoRPC(req.Body)
		if err != nil {
			return rpcerr.BadRequest(id, "bad %s body (go-micro's old protobuf framing, used without the %s header): %v", req.wireType, HeaderEndpoint, err)
		}
		req.env, method, req.Body = env, env.method, msg
	case FramingJSONRPC:
		m, rid, msg, err := parseJSONRPCRequest(req.Body)
		req.id = rid
		if err != nil {
			return rpcerr.BadRequest(id, "no endpoint named: set the %s header (a %s body without it is read as go-micro's old JSON-RPC framing, {\"method\", \"params\": [request], \"id\"}: %v)",
				HeaderEndpoint, mediaType(req.wireType), err)
		}
		method, req.Body = m, msg
	}
	if req.Endpoint == "" {
		req.Endpoint = method
	}
	if req.env.method == "" {
		req.env.method = req.Endpoint
	}
	return nil
}

// requestField takes one header field of the request being read that is
// not about its framing. A value the transport refuses sets req.err: the
// request is answered with it once its header is read.
func (sc *serverConn) requestField(name, value []byte) error {
	req, id := &sc.req, sc.s.opts.ErrorID
	switch {
	case equalFold(name, "content-type"):
		req.ContentType = sc.intern(&sc.lastCT, value)
	case equalFold(name, "micro-service"):
		req.Service = sc.intern(&sc.lastService, value)
		req.named = true
	case equalFold(name, "micro-endpoint"):
		req.Endpoint = sc.intern(&sc.lastEndpoint, value)
		req.named = true
	case equalFold(name, "micro-timeout"):
		d, err := parseTimeout(value)
		if err != nil || d <= 0 {
			req.err = rpcerr.BadRequest(id, "bad %s header %q: want a positive duration like 1500ms", HeaderTimeout, value)
		}
		req.Timeout = d
	case len(name) > len(MetadataPrefix) && equalFold(name[:len(MetadataPrefix)], "micro-meta-"):
		v, err := decodeValue(string(value))
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		if err != nil {
			req.err = rpcerr.BadRequest(id, "bad metadata header %s: %v", key, err)
		}
		if req.Metadata == nil {
			req.Metadata = metadata.Metadata{}
		}
		req.Metadata[key[len(MetadataPrefix):]] = v
	case equalFold(name, "expect"):
		if equalFold(value, "100-continue") {
			req.expectContinue = true
		} else {
			req.err = rpcerr.New(id, fmt.Sprintf("expectation %q not supported", value), http.StatusExpectationFailed)
		}
	case equalFold(name, "host"), equalFold(name, "user-agent"), equalFold(name, "accept"), equalFold(name, "accept-encoding"):
	default:
		sc.goMicroField(name, value)
	}
	return nil
}

// goMicroField takes a header field of go-micro's wire: Micro-Method,
// Micro-Id, X-Micro-* (the copies go-micro v1 sends, the only names of
// v0.2x), Timeout in nanoseconds; any other field is kept as metadata
// should the request turn out to come from go-micro, which sends metadata
// as plain header fields.
func (sc *serverConn) goMicroField(name, value []byte) {
	req, id := &sc.req, sc.s.opts.ErrorID
	full := name
	x := len(name) > 2 && (name[0] == 'x' || name[0] == 'X') && name[1] == '-'
	if x {
		name = name[2:]
	}
	switch {
	case equalFold(name, "micro-service"):
		if req.Service == "" {
			req.Service = sc.intern(&sc.lastService, value)
		}
		req.named, req.GoMicro = true, true
	case equalFold(name, "micro-endpoint"), equalFold(name, "micro-method"):
		if req.Endpoint == "" {
			req.Endpoint = sc.intern(&sc.lastEndpoint, value)
		}
		req.named, req.GoMicro = true, true
	case equalFold(name, "micro-id"):
		req.GoMicro = true
	case !x && equalFold(name, "timeout"):
		req.GoMicro = true
		ns, err := strconv.ParseUint(string(value), 10, 63)
		if err != nil {
			req.err = rpcerr.BadRequest(id, "bad %s header %q: want go-micro's timeout in nanoseconds", HeaderGoMicroTimeout, value)
		}
		if ns > 0 && req.Timeout == 0 {
			req.Timeout = time.Duration(ns)
		}
	case equalFold(name, "micro-protocol"), equalFold(name, "micro-target"):
		req.GoMicro = true
	default:
		req.fields = append(req.fields, rawField{textproto.CanonicalMIMEHeaderKey(string(full)), string(value)})
	}
}

// maxInterned is the longest value intern keeps for the next request: a
// connection must not hold a huge header value while it sits idle.
const maxInterned = 256

// intern returns v as a string, reusing *last when equal, so a connection
// calling the same endpoint again allocates nothing for it.
func (sc *serverConn) intern(last *string, v []byte) string {
	if len(v) > maxInterned {
		return string(v)
	}
	if string(v) != *last { // no allocation for the comparison
		*last = string(v)
	}
	return *last
}

func endpointName(req *Request) string {
	if req.Endpoint == "" {
		return "(no endpoint)"
	}
	return req.Endpoint
}

// formatSize writes n bytes for people: "4 MiB", "512 KiB", "100 bytes".
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dateValue is a Date header value and the second it is for.
type dateValue struct {
	sec int64
	s   string
}

// httpDate returns the current time in the HTTP date format, formatted once
// a second.
func (s *Server) httpDate() string {
	now := time.Now()
	if d := s.date.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateValue{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.s
}

// parseTimeout parses a Micro-Timeout value: "1500ms" quickly, anything
// else with time.ParseDuration.
func parseTimeout(v []byte) (time.Duration, error) {
	if n := len(v); n > 2 && n < 14 && v[n-2] == 'm' && v[n-1] == 's' {
		if ms, err := parseLength(v[:n-2]); err == nil {
			return time.Duration(ms) * time.Millisecond, nil
		}
	}
	return time.ParseDuration(string(v))
}
