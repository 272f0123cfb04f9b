package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/errors"
)

// Defaults of a Client.
const (
	DefaultDialTimeout         = 5 * time.Second
	DefaultMaxIdleConnsPerHost = 256
	DefaultIdleConnTimeout     = 90 * time.Second
	// DefaultMaxResponseSize bounds the body of a response.
	DefaultMaxResponseSize = 64 << 20
)

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

// DialTimeout bounds the making of one connection.
func DialTimeout(d time.Duration) ClientOption { return func(o *ClientOptions) { o.DialTimeout = d } }

// MaxIdleConnsPerHost sets how many idle connections are kept per node.
func MaxIdleConnsPerHost(n int) ClientOption {
	return func(o *ClientOptions) { o.MaxIdleConnsPerHost = n }
}

// IdleConnTimeout closes connections idle for this long.
func IdleConnTimeout(d time.Duration) ClientOption {
	return func(o *ClientOptions) { o.IdleConnTimeout = d }
}

// MaxResponseSize bounds the body of a response.
func MaxResponseSize(n int64) ClientOption { return func(o *ClientOptions) { o.MaxResponseSize = n } }

// Client sends requests to nodes over a pool of keep-alive HTTP/1.1
// connections. It is safe for concurrent use.
type Client struct {
	opts ClientOptions
	rt   *http.Transport
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
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	rt := &http.Transport{
		Proxy:               nil, // nodes are called directly, never through $HTTP_PROXY
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: o.MaxIdleConnsPerHost,
		IdleConnTimeout:     o.IdleConnTimeout,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Client{opts: o, rt: rt}
}

// Close closes the idle connections of the pool.
func (c *Client) Close() error {
	c.rt.CloseIdleConnections()
	return nil
}

// Send sends req to the node at addr (host:port) and waits for the answer
// until ctx is done. It returns the response, or an *errors.Error the server
// answered with, or a *SendError if no answer came (then ctx's error, if
// any, is wrapped too).
func (c *Client) Send(ctx context.Context, addr string, req *Request) (*Response, error) {
	hr, err := c.newHTTPRequest(ctx, addr, req)
	if err != nil {
		return nil, &SendError{Addr: addr, NotSent: true, Err: err}
	}
	hres, err := c.rt.RoundTrip(hr)
	if err != nil {
		return nil, &SendError{Addr: addr, NotSent: isDialError(err), Err: err}
	}
	defer hres.Body.Close()
	if e := hres.Header.Get(HeaderError); e != "" {
		return nil, errors.Parse(e)
	}
	if hres.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(hres.Body, 256))
		return nil, &SendError{Addr: addr, Err: fmt.Errorf("unexpected HTTP status %q (not a microbot node?): %q", hres.Status, b)}
	}
	body, buf, err := c.readBody(hres)
	if err != nil {
		return nil, &SendError{Addr: addr, Err: fmt.Errorf("reading response: %w", err)}
	}
	ct := hres.Header.Get("Content-Type")
	return &Response{ContentType: ct, Body: body, buf: buf}, nil
}

func (c *Client) newHTTPRequest(ctx context.Context, addr string, req *Request) (*http.Request, error) {
	h := make(http.Header, 5+len(req.Metadata))
	ct := req.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h["Content-Type"] = []string{ct}
	h[HeaderService] = []string{req.Service}
	h[HeaderEndpoint] = []string{req.Endpoint}
	if req.Timeout > 0 {
		h[HeaderTimeout] = []string{formatTimeout(req.Timeout)}
	}
	for k, v := range req.Metadata {
		if !validKey(k) {
			return nil, fmt.Errorf("metadata key %q cannot be a header name", k)
		}
		h[http.CanonicalHeaderKey(MetadataPrefix+k)] = []string{encodeValue(v)}
	}
	body := req.Body
	hr := &http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Scheme: "http", Host: addr, Path: "/"},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Host:          addr,
		ContentLength: int64(len(body)),
		Body:          io.NopCloser(bytes.NewReader(body)),
		// The transport may resend a request that was not written on a
		// keep-alive connection the server had just closed.
		GetBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
	}
	if len(body) == 0 {
		hr.Body = http.NoBody
	}
	return hr.WithContext(ctx), nil
}

// readBody reads the response body into a pooled buffer.
func (c *Client) readBody(hres *http.Response) ([]byte, *[]byte, error) {
	limit := c.opts.MaxResponseSize
	if hres.ContentLength > limit {
		return nil, nil, fmt.Errorf("response of %d bytes is over the limit of %d", hres.ContentLength, limit)
	}
	buf := getBuf()
	b := *buf
	if n := int(hres.ContentLength); n >= 0 {
		if cap(b) < n {
			b = make([]byte, n)
		}
		b = b[:n]
		if _, err := io.ReadFull(hres.Body, b); err != nil {
			putBuf(buf)
			return nil, nil, err
		}
		return b, buf, nil
	}
	w := bytes.NewBuffer(b[:0])
	n, err := w.ReadFrom(io.LimitReader(hres.Body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("response is over the limit of %d bytes", limit)
	}
	if err != nil {
		putBuf(buf)
		return nil, nil, err
	}
	return w.Bytes(), buf, nil
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
