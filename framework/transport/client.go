package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/framework/rpcerr"
)

// Defaults of a Client.
const (
	DefaultDialTimeout         = 5 * time.Second
	DefaultMaxIdleConnsPerHost = 256
	DefaultIdleConnTimeout     = 90 * time.Second
	// DefaultMaxResponseSize bounds the body of a response.
	DefaultMaxResponseSize = 64 << 20
)

// staleAfter is how long a connection may sit idle before it is checked
// for having been closed by the server before it is used again.
const staleAfter = time.Second

// ClientOptions configure a Client.
type ClientOptions struct {
	// DialTimeout bounds the making of one connection (the call's context
	// bounds it too).
	DialTimeout time.Duration
	// MaxIdleConnsPerHost is how many idle keep-alive connections are kept
	// for each node; set it to at least the number of concurrent calls to a
	// node to avoid reconnecting.
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes keep-alive connections idle for this long.
	IdleConnTimeout time.Duration
	// MaxResponseSize bounds the body of a response.
	MaxResponseSize int64
}

// ClientOption sets a ClientOptions field.
type ClientOption func(*ClientOptions)

// WithDialTimeout bounds the making of one connection.
func WithDialTimeout(d time.Duration) ClientOption {
	return func(o *ClientOptions) { o.DialTimeout = d }
}

// WithMaxIdleConnsPerHost sets how many idle connections are kept per node.
func WithMaxIdleConnsPerHost(n int) ClientOption {
	return func(o *ClientOptions) { o.MaxIdleConnsPerHost = n }
}

// WithIdleConnTimeout closes connections idle for this long.
func WithIdleConnTimeout(d time.Duration) ClientOption {
	return func(o *ClientOptions) { o.IdleConnTimeout = d }
}

// WithMaxResponseSize bounds the body of a response.
func WithMaxResponseSize(n int64) ClientOption {
	return func(o *ClientOptions) { o.MaxResponseSize = n }
}

// Client sends requests to nodes over a pool of keep-alive HTTP/1.1
// connections, one request at a time on each. It is safe for concurrent use.
//
// The request is written and the response read on the caller's goroutine,
// with no goroutine per connection: a call costs one write and, usually,
// one read.
type Client struct {
	seq    atomic.Uint64 // go-micro's request ids
	opts   ClientOptions
	dialer net.Dialer
	mu     sync.Mutex
	idle   map[string][]*conn // per address, most recently used last
	closed bool
}

// conn is one pooled connection.
type conn struct {
	nc        net.Conn
	br        *bufio.Reader
	lr        lineReader
	wbuf      []byte
	idleSince time.Time
}

// NewClient returns a Client.
func NewClient(opts ...ClientOption) *Client {
	o := ClientOptions{
		DialTimeout:         DefaultDialTimeout,
		MaxIdleConnsPerHost: DefaultMaxIdleConnsPerHost,
		IdleConnTimeout:     DefaultIdleConnTimeout,
		MaxResponseSize:     DefaultMaxResponseSize,
	}
	for _, f := range opts {
		f(&o)
	}
	return &Client{
		opts:   o,
		dialer: net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second},
		idle:   map[string][]*conn{},
	}
}

// Close closes the idle connections of the pool. Calls in flight finish;
// their connections are closed afterwards. The client stays usable.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = map[string][]*conn{}
	c.mu.Unlock()
	for _, cs := range idle {
		for _, cn := range cs {
			cn.nc.Close()
		}
	}
	return nil
}

// get returns an idle connection to addr or dials one.
func (c *Client) get(ctx context.Context, addr string) (cn *conn, reused bool, err error) {
	now := time.Now()
	for {
		c.mu.Lock()
		cs := c.idle[addr]
		if len(cs) == 0 {
			c.mu.Unlock()
			break
		}
		cn = cs[len(cs)-1]
		cs[len(cs)-1] = nil
		c.idle[addr] = cs[:len(cs)-1]
		c.mu.Unlock()
		idle := now.Sub(cn.idleSince)
		if idle > c.opts.IdleConnTimeout || (idle > staleAfter && cn.closedByPeer()) {
			cn.nc.Close()
			continue
		}
		return cn, true, nil
	}
	nc, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	cn = &conn{nc: nc, br: bufio.NewReaderSize(nc, 8<<10)}
	cn.lr.br = cn.br
	return cn, false, nil
}

// closedByPeer reports whether the server has closed (or written to) an
// idle connection, with a read that does not wait.
func (cn *conn) closedByPeer() bool {
	return cn.br.Buffered() > 0 || peerClosed(cn.nc)
}

// put returns a connection to the pool.
func (c *Client) put(addr string, cn *conn) {
	cn.idleSince = time.Now()
	c.mu.Lock()
	if cs := c.idle[addr]; len(cs) < c.opts.MaxIdleConnsPerHost {
		c.idle[addr] = append(cs, cn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	cn.nc.Close()
}

// aLongTimeAgo is a deadline in the past, to interrupt I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// Send sends req to the node at addr (host:port) and waits for the answer
// until ctx is done. It returns the response, or an *rpcerr.Error the server
// answered with, or a *SendError if no answer came (then ctx's error, if
// any, is wrapped too).
func (c *Client) Send(ctx context.Context, addr string, req *Request) (*Response, error) {
	if err := checkRequest(req); err != nil {
		return nil, &SendError{Addr: addr, NotSent: true, Err: err}
	}
	cn, reused, err := c.get(ctx, addr)
	if err != nil {
		return nil, &SendError{Addr: addr, NotSent: true, Err: err}
	}
	// The end of ctx (its deadline or a cancel) interrupts the I/O. This
	// costs less than setting the connection's deadline for every call.
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { cn.nc.SetDeadline(aLongTimeAgo) }) //nolint:errcheck
	}
	res, keep, err := c.roundTrip(cn, addr, req, reused)
	if !stop() {
		keep = false // the deadline was moved: the connection is spoilt
	}
	if err != nil && !isServerError(err) {
		if cerr := ctxErr(ctx, err); cerr != nil {
			err = &SendError{Addr: addr, Err: fmt.Errorf("%w (%v)", cerr, err)}
		}
	}
	if keep && err == nil || keep && isServerError(err) {
		c.put(addr, cn)
	} else {
		cn.nc.Close()
	}
	return res, err
}

// ctxErr returns ctx's error if ctx is why err happened: ctx is done, or
// err is the connection's deadline (ctx's) passing a moment before ctx's
// own timer fires.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func isServerError(err error) bool {
	var e *rpcerr.Error
	return errors.As(err, &e)
}

// roundTrip writes req on cn and reads the answer; keep says whether cn can
// be used again.
func (c *Client) roundTrip(cn *conn, addr string, req *Request, reused bool) (res *Response, keep bool, err error) {
	body, seq := req.Body, uint64(0)
	if req.GoMicro || req.Framing != FramingPlain {
		seq = c.seq.Add(1)
	}
	if req.Framing != FramingPlain {
		fb := getBuf()
		defer func() { *fb = body[:0]; putBuf(fb) }()
		if req.Framing == FramingProtoRPC {
			body = appendProtoRPC((*fb)[:0], envelope{method: req.Endpoint, seq: seq}, false, req.Body)
		} else {
			body = appendJSONRPCRequest((*fb)[:0], req.Endpoint, seq, req.Body)
		}
	}
	b := appendRequest(cn.wbuf[:0], addr, req, seq, len(body))
	if len(body) <= 64<<10 {
		b = append(b, body...)
		_, err = cn.nc.Write(b)
	} else {
		bufs := net.Buffers{b, body}
		_, err = bufs.WriteTo(cn.nc)
	}
	if cap(b) <= 64<<10 {
		cn.wbuf = b[:0]
	}
	if err != nil {
		// The request was not written whole, so no server can have handled
		// it. The server may have refused it early (a body over its limit)
		// and said why: read that answer if it is there.
		werr := &SendError{Addr: addr, NotSent: true, Err: fmt.Errorf("writing request: %w", err)}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			cn.nc.SetReadDeadline(time.Now().Add(time.Second)) //nolint:errcheck
			if _, _, rerr := c.readResponse(cn, req.Framing); isServerError(rerr) {
				return nil, false, rerr
			}
		}
		return nil, false, werr
	}
	res, keep, err = c.readResponse(cn, req.Framing)
	if err != nil {
		if _, ok := err.(*rpcerr.Error); ok {
			return nil, keep, err
		}
		if reused && errors.Is(err, errNoResponse) {
			err = fmt.Errorf("%w on a reused connection (closed by the server?)", err)
		}
		return nil, false, &SendError{Addr: addr, Err: err}
	}
	return res, keep, nil
}

var errNoResponse = errors.New("connection closed before any response")

// maxInformational is how many informational (1xx) answers may come before
// a response; more fail the call (as in net/http).
const maxInformational = 5

// responseHeader is what readResponseHeader found in a response's header.
type responseHeader struct {
	header
	status          int
	statusText      string // the status line after the version, when not 200
	ctype, errField string
}

// readResponse reads one response from cn, skipping informational answers;
// framing is the request's.
func (c *Client) readResponse(cn *conn, framing Framing) (*Response, bool, error) {
	var h responseHeader
	for n := 0; ; n++ {
		if err := readResponseHeader(&cn.lr, &h, n == 0); err != nil {
			return nil, false, err
		}
		if h.status >= 200 {
			break
		}
		if n == maxInformational {
			return nil, false, fmt.Errorf("more than %d informational (1xx) answers and no response", maxInformational)
		}
	}
	return c.readBody(cn, &h, framing)
}

// readResponseHeader reads a status line and header section into h. first
// says whether it is the first answer to the request: a connection closed
// before it is errNoResponse.
func readResponseHeader(lr *lineReader, h *responseHeader, first bool) error {
	*h = responseHeader{}
	lr.count = 0
	line, err := lr.line()
	if err != nil {
		if first && lr.count == 0 && (err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err)) {
			return fmt.Errorf("%w: %v", errNoResponse, err)
		}
		return fmt.Errorf("reading response: %w", unexpected(err))
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return fmt.Errorf("not an HTTP/1.x response (not a microbot node?): %.40q", line)
	}
	h.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return fmt.Errorf("bad status line %.40q", line)
	}
	if h.status != 200 {
		h.statusText = string(line[9:])
	}
	h.keepAlive = line[7] == '1'
	err = lr.readHeader(&h.header, func(name, value []byte) error {
		switch {
		case equalFold(name, "content-type"):
			h.ctype = contentTypeString(value)
		case equalFold(name, "micro-error"):
			h.errField = string(value)
		case equalFold(name, "x-micro-error"): // go-micro v0.2x's name
			if h.errField == "" {
				h.errField = string(value)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading response header: %w", err)
	}
	return nil
}

// readBody reads the body of the response whose header is h, to a request
// in framing.
func (c *Client) readBody(cn *conn, h *responseHeader, framing Framing) (*Response, bool, error) {
	keep := h.keepAlive
	buf := getBuf()
	body := (*buf)[:0]
	limit := c.opts.MaxResponseSize
	var err error
	switch {
	case h.chunked:
		body, err = readChunked(&cn.lr, body, limit)
	case h.length >= 0:
		if h.length > limit {
			err = errTooLarge
			break
		}
		body = grow(body, int(h.length))
		_, err = io.ReadFull(cn.br, body)
		err = unexpected(err)
	case h.status == 204 || h.status == 304:
	default: // delimited by the end of the connection
		keep = false
		body, err = readAll(cn.br, body, limit)
	}
	if err != nil {
		putBuf(buf)
		if err == errTooLarge {
			err = fmt.Errorf("response is over the limit of %d bytes", limit)
		}
		return nil, false, fmt.Errorf("reading response body: %w", err)
	}
	if h.errField != "" {
		putBuf(buf)
		// An error answered with status 200 comes from go-micro's servers,
		// and those of v1.0 to v1.8 close the connection after it without
		// saying so: it is not used again.
		return nil, keep && h.status != 200, rpcerr.Parse(h.errField)
	}
	if h.status != 200 {
		msg := body[:min(len(body), 256)]
		putBuf(buf)
		return nil, false, fmt.Errorf("unexpected HTTP status %q (not a microbot node?): %q", h.statusText, msg)
	}
	*buf = body
	res := &Response{ContentType: h.ctype, Body: body, buf: buf}
	if framing == FramingPlain {
		return res, keep, nil
	}
	msg, errText, err := unframeAnswer(framing, body)
	if err != nil {
		res.Release()
		return nil, false, err
	}
	if errText != "" {
		res.Release()
		return nil, false, rpcerr.Parse(errText) // not used again, as above
	}
	res.ContentType, res.Body = framing.payloadType(), msg
	return res, keep, nil
}

// unframeAnswer takes the message and the error text out of a framed
// answer.
func unframeAnswer(framing Framing, body []byte) (msg []byte, errText string, err error) {
	if framing == FramingJSONRPC {
		return parseJSONRPCAnswer(body)
	}
	env, msg, err := parseProtoRPC(body)
	return msg, env.err, err
}

// readAll appends r's bytes to b until EOF, failing past limit bytes.
func readAll(r io.Reader, b []byte, limit int64) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b, errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// isReset reports whether err is a connection reset by the peer.
func isReset(err error) bool { return errors.Is(err, errConnReset) }

// contentTypeString returns v as a string, sharing the common values.
func contentTypeString(v []byte) string {
	switch string(v) { // no allocation: the compiler optimises the conversion
	case "application/json":
		return "application/json"
	case "application/protobuf":
		return "application/protobuf"
	}
	return string(v)
}

// checkRequest refuses what cannot be sent as header values.
func checkRequest(req *Request) error {
	for _, f := range []struct{ name, v string }{
		{"service", req.Service}, {"endpoint", req.Endpoint}, {"content type", req.ContentType},
	} {
		if !validValue(f.v) {
			return fmt.Errorf("%s %q holds a control character", f.name, f.v)
		}
	}
	for k := range req.Metadata {
		if !validKey(k) {
			return fmt.Errorf("metadata key %q cannot be a header name", k)
		}
	}
	return nil
}

// appendRequest appends the request line and header of req to b, for a
// body of n bytes; seq is the go-micro request id.
func appendRequest(b []byte, addr string, req *Request, seq uint64, n int) []byte {
	ct := req.ContentType
	if req.Framing != FramingPlain {
		ct = req.Framing.String()
	} else if ct == "" {
		ct = "application/json"
	}
	b = append(b, "POST / HTTP/1.1\r\nHost: "...)
	b = append(b, addr...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, ct...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\n"+HeaderService+": "...)
	b = append(b, req.Service...)
	b = append(b, "\r\n"+HeaderEndpoint+": "...)
	b = append(b, req.Endpoint...)
	if req.GoMicro || req.Framing != FramingPlain {
		return appendGoMicroHeader(b, req, seq)
	}
	if req.Timeout > 0 {
		b = append(b, "\r\n"+HeaderTimeout+": "...)
		ms := (req.Timeout + time.Millisecond - 1) / time.Millisecond
		b = strconv.AppendInt(b, int64(ms), 10)
		b = append(b, "ms"...)
	}
	for k, v := range req.Metadata {
		b = append(b, "\r\n"+MetadataPrefix...)
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, encodeValue(v)...)
	}
	return append(b, "\r\n\r\n"...)
}

// appendGoMicroHeader appends the rest of a header in go-micro v1's
// dialect, after Micro-Service and Micro-Endpoint: Micro-Method, Micro-Id,
// the X- copies (go-micro v0.2x reads only those), Timeout in nanoseconds,
// and the metadata as header fields of their own names.
func appendGoMicroHeader(b []byte, req *Request, seq uint64) []byte {
	b = append(b, "\r\n"+HeaderMethod+": "...)
	b = append(b, req.Endpoint...)
	b = append(b, "\r\n"+HeaderID+": "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\r\nX-"+HeaderService+": "...)
	b = append(b, req.Service...)
	b = append(b, "\r\nX-"+HeaderEndpoint+": "...)
	b = append(b, req.Endpoint...)
	b = append(b, "\r\nX-"+HeaderMethod+": "...)
	b = append(b, req.Endpoint...)
	b = append(b, "\r\nX-"+HeaderID+": "...)
	b = strconv.AppendUint(b, seq, 10)
	if req.Timeout > 0 {
		b = append(b, "\r\n"+HeaderGoMicroTimeout+": "...)
		b = strconv.AppendInt(b, int64(req.Timeout), 10)
	}
	for k, v := range req.Metadata {
		if reservedField(k) {
			continue
		}
		b = append(b, "\r\n"...)
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, encodeValue(v)...)
	}
	return append(b, "\r\n\r\n"...)
}

// reservedField reports whether k names a header field the transport
// writes itself, or one go-micro reads as part of its wire, which metadata
// sent as plain fields must not replace.
func reservedField(k string) bool {
	k = strings.TrimPrefix(strings.ToLower(k), "x-")
	switch k {
	case "host", "content-type", "content-length", "transfer-encoding", "connection", "expect", "timeout",
		"micro-service", "micro-endpoint", "micro-method", "micro-id", "micro-error", "micro-protocol", "micro-target":
		return true
	}
	return false
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// putBuf returns a buffer to the pool unless it grew too big to keep.
func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	bufPool.Put(b)
}
