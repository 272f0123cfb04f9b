package xmppclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Limits on what a peer can make the stream reader hold.
const (
	// DefaultMaxStanzaSize bounds the bytes of one incoming top-level
	// element (prosody's own c2s limit is 256 KiB; the margin covers
	// stanzas other servers let through).
	DefaultMaxStanzaSize = 1 << 20
	// maxDepth bounds the nesting of elements inside one stanza.
	maxDepth = 64
	// maxTokens bounds the XML tokens of one stanza (start and end tags,
	// text), so that a stanza of tiny elements cannot make the reader hold
	// many times its size in memory.
	maxTokens = 10000
)

// Errors of the stream layer. Each is wrapped in the error that reports it.
var (
	// ErrStanzaTooLarge: a peer sent an element larger than the limit.
	ErrStanzaTooLarge = errors.New("stanza too large")
	// ErrRestrictedXML: a peer sent XML that XMPP forbids (a DTD, an
	// entity declaration, a comment, a processing instruction), too deep
	// a nesting or too many tokens.
	ErrRestrictedXML = errors.New("restricted XML")
	// ErrStreamClosed: the peer closed the stream (</stream:stream>).
	ErrStreamClosed = errors.New("stream closed by peer")
	// ErrDeadStream: nothing arrived, not even the answer to a ping, within
	// the keepalive interval and timeout.
	ErrDeadStream = errors.New("stream dead: no data within the keepalive timeout")
)

// StreamError is a <stream:error/> the server sent before closing the
// stream (RFC 6120 §4.9), such as "conflict" when another connection took
// over the same resource, or "system-shutdown".
type StreamError struct {
	Condition string
	Text      string
}

// Error implements error.
func (e *StreamError) Error() string {
	if e.Text != "" {
		return "xmpp stream error: " + e.Condition + ": " + e.Text
	}
	return "xmpp stream error: " + e.Condition
}

// streamHeader is what the reader learned from the peer's <stream:stream>.
type streamHeader struct {
	ID, From, Version string
}

// element is one complete top-level element of the stream, read and
// checked, as a list of tokens to decode.
type element struct {
	Name   xml.Name
	tokens []xml.Token
}

// decode unmarshals the element into v. Because the whole element was
// already read, a decoding error loses only this element and leaves the
// stream in step.
func (el *element) decode(v any) error {
	return xml.NewTokenDecoder(&tokenList{toks: el.tokens}).Decode(v)
}

type tokenList struct{ toks []xml.Token }

func (l *tokenList) Token() (xml.Token, error) {
	if len(l.toks) == 0 {
		return nil, io.EOF
	}
	t := l.toks[0]
	l.toks = l.toks[1:]
	return t, nil
}

// streamReader reads an XMPP stream: the stream header, then whole
// top-level elements, each bounded in size, depth and token count, with
// everything XMPP's restricted XML forbids rejected.
type streamReader struct {
	idle *idleReader
	lim  *limitReader
	buf  *bufio.Reader
	dec  *xml.Decoder
	max  int64
}

func newStreamReader(r io.Reader, maxSize int64) *streamReader {
	sr := &streamReader{max: maxSize}
	sr.idle = &idleReader{r: r}
	sr.lim = &limitReader{r: sr.idle, n: maxSize}
	sr.buf = bufio.NewReaderSize(sr.lim, 4096)
	sr.dec = xml.NewDecoder(sr.buf)
	// No CharsetReader: a stream in anything but UTF-8 fails. No Entity
	// map: only the five predefined entities and character references are
	// understood, so entity tricks (billion laughs, external entities)
	// are syntax errors.
	sr.dec.Strict = true
	return sr
}

// buffered reports how many bytes were read from the connection but not yet
// parsed; it must be 0 when the connection switches to TLS.
func (sr *streamReader) buffered() int { return sr.buf.Buffered() }

// header reads up to and including the peer's <stream:stream> start tag.
func (sr *streamReader) header() (streamHeader, error) {
	sr.lim.reset(sr.max)
	for {
		tok, err := sr.token()
		if err != nil {
			return streamHeader{}, err
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" {
				return streamHeader{}, fmt.Errorf("%w: processing instruction %q", ErrRestrictedXML, t.Target)
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return streamHeader{}, errors.New("xmpp: text before the stream header")
			}
		case xml.StartElement:
			if t.Name.Space != NSStream || t.Name.Local != "stream" {
				return streamHeader{}, fmt.Errorf("xmpp: expected <stream:stream>, got <%s xmlns=%q>", t.Name.Local, t.Name.Space)
			}
			var h streamHeader
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "id":
					h.ID = a.Value
				case "from":
					h.From = a.Value
				case "version":
					h.Version = a.Value
				}
			}
			if !strings.HasPrefix(h.Version, "1.") {
				return streamHeader{}, fmt.Errorf("xmpp: unsupported stream version %q", h.Version)
			}
			return h, nil
		default:
			return streamHeader{}, fmt.Errorf("xmpp: unexpected %T before the stream header", tok)
		}
	}
}

// token reads one token and rejects what restricted XML forbids.
func (sr *streamReader) token() (xml.Token, error) {
	tok, err := sr.dec.Token()
	if err != nil {
		if errors.Is(err, ErrStanzaTooLarge) {
			return nil, fmt.Errorf("xmpp: %w (limit %d bytes)", ErrStanzaTooLarge, sr.max)
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) && se.Msg != "unexpected EOF" {
			return nil, fmt.Errorf("xmpp: malformed XML: %w", err)
		}
		if err == io.EOF || se != nil {
			return nil, fmt.Errorf("xmpp: connection closed without closing the stream: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	switch t := tok.(type) {
	case xml.Directive:
		return nil, fmt.Errorf("xmpp: %w: <!%.20s…>", ErrRestrictedXML, t)
	case xml.Comment:
		return nil, fmt.Errorf("xmpp: %w: comment", ErrRestrictedXML)
	}
	return tok, nil
}

// next reads the next top-level element whole. Whitespace between elements
// (keepalives) is skipped. The end of the stream is ErrStreamClosed, and a
// <stream:error/> is returned as a *StreamError.
func (sr *streamReader) next() (*element, error) {
	for {
		sr.lim.reset(sr.max)
		tok, err := sr.token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("xmpp: %w: text between stanzas", ErrRestrictedXML)
			}
		case xml.EndElement: // </stream:stream>
			return nil, fmt.Errorf("xmpp: %w", ErrStreamClosed)
		case xml.ProcInst:
			return nil, fmt.Errorf("xmpp: %w: processing instruction", ErrRestrictedXML)
		case xml.StartElement:
			el, err := sr.rest(t)
			if err != nil {
				return nil, err
			}
			if el.Name.Space == NSStream && el.Name.Local == "error" {
				var raw Element
				if err := el.decode(&raw); err != nil {
					return nil, fmt.Errorf("xmpp: malformed stream error: %w", err)
				}
				cond, text := condition(&raw, NSStreams)
				return nil, &StreamError{Condition: cond, Text: text}
			}
			return el, nil
		}
	}
}

// rest reads the element that start begins, up to its end tag.
func (sr *streamReader) rest(start xml.StartElement) (*element, error) {
	el := &element{Name: start.Name, tokens: []xml.Token{cleanStart(start)}}
	depth := 1
	for depth > 0 {
		tok, err := sr.token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return nil, fmt.Errorf("xmpp: %w: elements nested deeper than %d", ErrRestrictedXML, maxDepth)
			}
			tok = cleanStart(t)
		case xml.EndElement:
			depth--
			tok = t
		case xml.CharData:
			tok = t.Copy()
		case xml.ProcInst:
			return nil, fmt.Errorf("xmpp: %w: processing instruction", ErrRestrictedXML)
		}
		el.tokens = append(el.tokens, tok)
		if len(el.tokens) > maxTokens {
			return nil, fmt.Errorf("xmpp: %w: more than %d XML tokens in one stanza", ErrRestrictedXML, maxTokens)
		}
	}
	return el, nil
}

// cleanStart copies a start tag whose names the decoder already resolved to
// namespaces, without its xmlns declarations, so that decoding the copy
// again cannot re-interpret them.
func cleanStart(t xml.StartElement) xml.StartElement {
	out := xml.StartElement{Name: t.Name, Attr: make([]xml.Attr, 0, len(t.Attr))}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		out.Attr = append(out.Attr, a)
	}
	return out
}

// limitReader fails with ErrStanzaTooLarge once n bytes were read since the
// last reset.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) reset(n int64) { l.n = n }

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrStanzaTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// deadliner is the part of net.Conn the idle reader needs.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// idleReader turns silence into keepalive: when no byte arrives for
// interval it calls ping (once), and when nothing arrives within timeout
// after that, the read fails with ErrDeadStream. Only time spent waiting
// in Read counts, so a reader that is slow to come back for more data (a
// busy consumer) is never mistaken for a dead stream. With interval 0 it
// is a plain reader.
type idleReader struct {
	r        io.Reader
	interval time.Duration
	timeout  time.Duration
	ping     func()
}

func (ir *idleReader) Read(p []byte) (int, error) {
	d, ok := ir.r.(deadliner)
	if ir.interval <= 0 || !ok {
		return ir.r.Read(p)
	}
	wait, pinged := ir.interval, false
	for {
		if err := d.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return 0, err
		}
		n, err := ir.r.Read(p)
		var ne net.Error
		if n > 0 || err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return n, err
		}
		if pinged {
			return 0, ErrDeadStream
		}
		pinged, wait = true, ir.timeout
		ir.ping()
	}
}

// streamWriter writes to the stream. Stanzas are marshalled by
// encoding/xml, so every text and attribute is escaped; raw writes are only
// used for the stream's own open and close tags. After a failed write the
// stream is unusable (a TLS record may be half-written), so the error
// sticks.
type streamWriter struct {
	mu      sync.Mutex
	conn    net.Conn
	timeout time.Duration
	max     int
	err     error
}

// ErrStanzaTooLargeToSend: an outgoing stanza is larger than the limit the
// client was configured with (prosody drops c2s streams over 256 KiB).
var ErrStanzaTooLargeToSend = errors.New("outgoing stanza too large")

// encode marshals v and writes it.
func (w *streamWriter) encode(ctx context.Context, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return fmt.Errorf("xmpp: encoding %T: %w", v, err)
	}
	if w.max > 0 && len(b) > w.max {
		return fmt.Errorf("xmpp: %w: %d bytes, limit %d", ErrStanzaTooLargeToSend, len(b), w.max)
	}
	return w.write(ctx, b)
}

// write writes b whole before the context's deadline and the writer's
// timeout, whichever is first.
func (w *streamWriter) write(ctx context.Context, b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(w.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := w.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = w.conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := w.conn.Write(b)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		w.err = fmt.Errorf("xmpp: write: %w", err)
		return w.err
	}
	return nil
}

// openStream writes the stream header to the domain.
func (w *streamWriter) openStream(ctx context.Context, to, from string) error {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?><stream:stream to='")
	_ = xml.EscapeText(&b, []byte(to))
	if from != "" {
		b.WriteString("' from='")
		_ = xml.EscapeText(&b, []byte(from))
	}
	b.WriteString("' version='1.0' xml:lang='en' xmlns='" + NSClient + "' xmlns:stream='" + NSStream + "'>")
	return w.write(ctx, b.Bytes())
}

// closeStream writes the stream's end tag.
func (w *streamWriter) closeStream(ctx context.Context) error {
	return w.write(ctx, []byte("</stream:stream>"))
}
