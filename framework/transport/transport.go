package transport

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/microbot/microbot/framework/metadata"
)

// Header names of the wire format (see the package documentation).
const (
	HeaderService  = "Micro-Service"
	HeaderEndpoint = "Micro-Endpoint"
	HeaderTimeout  = "Micro-Timeout"
	HeaderError    = "Micro-Error"
	// MetadataPrefix starts the name of every metadata header.
	MetadataPrefix = "Micro-Meta-"
)

// Request is one call on the wire.
type Request struct {
	Service  string
	Endpoint string
	// ContentType is the type of Body, the encoded message
	// (application/json, application/protobuf), whatever the framing.
	ContentType string
	// Metadata travels as Micro-Meta-* headers (towards go-micro, as
	// headers of their own name).
	Metadata metadata.Metadata
	// Timeout is the time the caller still waits; zero means no limit is
	// sent. The client fills it from the context's deadline.
	Timeout time.Duration
	Body    []byte
	// GoMicro is set for calls in go-micro's dialect: a Server sets it when
	// the request carries go-micro's marks (Micro-Id, Micro-Method, X-Micro-*
	// or Timeout headers, or an old framing) and then answers errors as
	// go-micro's servers do, with status 200; a Client given it sends
	// go-micro's headers too, for go-micro nodes.
	GoMicro bool
	// Framing is how Body travels: plain, or in one of go-micro's old
	// framings (which imply GoMicro).
	Framing Framing
}

// Response is the answer to a successful call.
type Response struct {
	ContentType string
	Body        []byte
	buf         *[]byte // pooled backing of Body, if any
}

// Release gives the response's buffer back for reuse. Body must not be used
// afterwards. Calling it is optional.
func (r *Response) Release() {
	if r.buf != nil {
		*r.buf = (*r.buf)[:0]
		putBuf(r.buf)
		r.buf, r.Body = nil, nil
	}
}

// SendError is a failure to get an answer from a node: the connection could
// not be made, broke, or the peer did not speak the wire format. An error
// the server answered with is an *rpcerr.Error instead.
type SendError struct {
	Addr string
	// NotSent is true when the request certainly never reached a server
	// (the connection could not be made), so retrying it elsewhere is safe
	// even if the call is not idempotent.
	NotSent bool
	Err     error
}

// Error says which node failed and why.
func (e *SendError) Error() string {
	if e.NotSent {
		return fmt.Sprintf("node %s unreachable: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("node %s: %v", e.Addr, e.Err)
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// isDialError reports whether err happened while connecting, before any byte
// of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// needsEscape reports whether b must be percent-encoded in a header value.
func needsEscape(b byte) bool { return b < 0x20 || b == 0x7f || b >= 0x80 || b == '%' }

// encodeValue percent-encodes the bytes of v a header value cannot carry.
func encodeValue(v string) string {
	n := 0
	for i := 0; i < len(v); i++ {
		if needsEscape(v[i]) {
			n++
		}
	}
	if n == 0 {
		return v
	}
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(v) + 2*n)
	for i := 0; i < len(v); i++ {
		if b := v[i]; needsEscape(b) {
			sb.WriteByte('%')
			sb.WriteByte(hex[b>>4])
			sb.WriteByte(hex[b&15])
		} else {
			sb.WriteByte(b)
		}
	}
	return sb.String()
}

// decodeValue reverses encodeValue.
func decodeValue(v string) (string, error) {
	if strings.IndexByte(v, '%') < 0 {
		return v, nil
	}
	return url.PathUnescape(v)
}

// validKey reports whether k can be part of a header name (an RFC 7230 token).
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// formatTimeout writes d for the Micro-Timeout header, rounded up to the
// millisecond so a small positive remainder does not become zero.
func formatTimeout(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10) + "ms"
}
