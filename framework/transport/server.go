package transport

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/microbot/microbot/framework/errors"
	"github.com/microbot/microbot/framework/metadata"
)

// DefaultMaxBodySize is the default limit of a request body (4 MiB).
const DefaultMaxBodySize = 4 << 20

// maxErrorHeader bounds the Micro-Error header; longer details are cut.
const maxErrorHeader = 8 << 10

// Handler answers calls that arrived over the wire.
type Handler interface {
	// ServeRPC answers req. ctx carries the request's metadata and the
	// caller's deadline and is cancelled if the caller goes away. It returns
	// the response body, encoded in req.ContentType, or an error; an error
	// that is not an *errors.Error is sent as a 500.
	ServeRPC(ctx context.Context, req *Request) ([]byte, error)
}

// HandlerOptions configure the HTTP handler returned by NewHandler.
type HandlerOptions struct {
	// MaxBodySize is the largest request body accepted (default 4 MiB).
	MaxBodySize int64
	// ErrorID is the id of the errors the transport itself answers with
	// (bad headers, oversize bodies): the service's name.
	ErrorID string
}

// HandlerOption sets a HandlerOptions field.
type HandlerOption func(*HandlerOptions)

// MaxBodySize sets the largest request body accepted.
func MaxBodySize(n int64) HandlerOption { return func(o *HandlerOptions) { o.MaxBodySize = n } }

// ErrorID sets the id of the transport's own errors.
func ErrorID(id string) HandlerOption { return func(o *HandlerOptions) { o.ErrorID = id } }

// NewHandler returns an http.Handler that speaks the wire format and passes
// each call to h.
func NewHandler(h Handler, opts ...HandlerOption) http.Handler {
	o := HandlerOptions{MaxBodySize: DefaultMaxBodySize}
	for _, f := range opts {
		f(&o)
	}
	if o.MaxBodySize <= 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	return &httpHandler{h: h, opts: o}
}

type httpHandler struct {
	h    Handler
	opts HandlerOptions
}

var (
	jsonContentType = []string{"application/json"}
	allowPost       = []string{http.MethodPost}
)

func (hh *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = allowPost
		writeError(w, errors.New(hh.opts.ErrorID, "method "+r.Method+" not allowed: calls are POST requests", http.StatusMethodNotAllowed))
		return
	}
	req := &Request{
		Service:     headerValue(r.Header, HeaderService),
		Endpoint:    headerValue(r.Header, HeaderEndpoint),
		ContentType: headerValue(r.Header, "Content-Type"),
	}
	ctx := r.Context()
	if t := headerValue(r.Header, HeaderTimeout); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			writeError(w, errors.BadRequest(hh.opts.ErrorID, "bad %s header %q: want a positive duration like 1500ms", HeaderTimeout, t))
			return
		}
		req.Timeout = d
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	for k, v := range r.Header {
		if len(k) <= len(MetadataPrefix) || !strings.HasPrefix(k, MetadataPrefix) || len(v) == 0 {
			continue
		}
		val, err := decodeValue(v[0])
		if err != nil {
			writeError(w, errors.BadRequest(hh.opts.ErrorID, "bad metadata header %s: %v", k, err))
			return
		}
		if req.Metadata == nil {
			req.Metadata = metadata.Metadata{}
		}
		req.Metadata[k[len(MetadataPrefix):]] = val
	}
	if req.Metadata != nil {
		ctx = metadata.NewContext(ctx, req.Metadata)
	}
	body, rerr := hh.readBody(r, req)
	if rerr != nil {
		writeError(w, rerr)
		return
	}
	req.Body = body
	rsp, err := hh.h.ServeRPC(ctx, req)
	putBuf(&body)
	if err != nil {
		e := errors.FromError(err)
		if e.ID == "" {
			e.ID = hh.opts.ErrorID
		}
		writeError(w, e)
		return
	}
	wh := w.Header()
	wh["Content-Type"] = contentTypeValue(req.ContentType)
	wh["Content-Length"] = []string{strconv.Itoa(len(rsp))}
	w.WriteHeader(http.StatusOK)
	w.Write(rsp) //nolint:errcheck // the caller went away; nothing to tell
}

// readBody reads the request body, refusing one over the limit with 413.
func (hh *httpHandler) readBody(r *http.Request, req *Request) ([]byte, *errors.Error) {
	limit := hh.opts.MaxBodySize
	tooLarge := func() *errors.Error {
		return errors.RequestEntityTooLarge(hh.opts.ErrorID,
			"request body for %s is larger than the limit of %s", endpointName(req), formatSize(limit))
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	b := (*getBuf())[:0]
	if n := r.ContentLength; n >= 0 {
		if int64(cap(b)) < n {
			b = make([]byte, n)
		}
		b = b[:n]
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, errors.BadRequest(hh.opts.ErrorID, "reading request body for %s: %v", endpointName(req), err)
		}
		return b, nil
	}
	for { // chunked: read up to limit+1 bytes
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, tooLarge()
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, errors.BadRequest(hh.opts.ErrorID, "reading request body for %s: %v", endpointName(req), err)
		}
	}
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

// contentTypeValue returns a header value slice for ct, shared for the
// common types to save an allocation per response.
func contentTypeValue(ct string) []string {
	switch ct {
	case "", "application/json":
		return jsonContentType
	case "application/protobuf":
		return protobufContentType
	}
	return []string{ct}
}

var protobufContentType = []string{"application/protobuf"}

func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// writeError answers with e: its code as status, its JSON in the Micro-Error
// header and as the body.
func writeError(w http.ResponseWriter, e *errors.Error) {
	js := e.Marshal()
	if len(js) > maxErrorHeader {
		cut := *e
		cut.Detail = cut.Detail[:min(len(cut.Detail), maxErrorHeader/2)] + " …(cut)"
		js = cut.Marshal()
	}
	status := int(e.Code)
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h[HeaderError] = []string{js}
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(js))}
	w.WriteHeader(status)
	io.WriteString(w, js) //nolint:errcheck // the caller went away
}
