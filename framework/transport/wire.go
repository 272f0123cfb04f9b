package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// This file holds the HTTP/1.1 message syntax both ends share: reading lines
// and header fields, and the chunked transfer coding (RFC 9112).

// maxHeaderBytes bounds the header section of a message.
const maxHeaderBytes = 1 << 20

var (
	errHeaderTooLarge = errors.New("header section too large")
	errMalformed      = errors.New("malformed HTTP message")
	// errUnsupportedCoding is a transfer coding other than chunked.
	errUnsupportedCoding = errors.New("transfer coding not supported")
)

// lineReader reads CRLF- (or LF-) terminated lines, counting the bytes of
// the header section against maxHeaderBytes.
type lineReader struct {
	br    *bufio.Reader
	long  []byte // holds a line longer than br's buffer; see release
	count int
}

// release drops the buffer of a long line once the lines it held are used:
// a keep-alive connection that once got a 1 MiB header must not keep a
// 1 MiB buffer while it waits for the next message.
func (lr *lineReader) release() { lr.long = nil }

// line returns the next line without its terminator. The slice is valid
// until the next call.
func (lr *lineReader) line() ([]byte, error) {
	b, err := lr.br.ReadSlice('\n')
	lr.count += len(b)
	if err == bufio.ErrBufferFull {
		lr.long = append(lr.long[:0], b...)
		for err == bufio.ErrBufferFull {
			if lr.count > maxHeaderBytes {
				return nil, errHeaderTooLarge
			}
			b, err = lr.br.ReadSlice('\n')
			lr.count += len(b)
			lr.long = append(lr.long, b...)
		}
		b = lr.long
	}
	if lr.count > maxHeaderBytes {
		return nil, errHeaderTooLarge
	}
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, nil
}

// header is what a message's header section says about its framing: how
// its body is delimited and whether the connection stays open after it.
type header struct {
	length    int64 // Content-Length; -1 when absent
	chunked   bool  // Transfer-Encoding: chunked
	keepAlive bool  // the connection stays open after the message
}

// readHeader reads the fields of a header section up to its empty line,
// for both ends. The fields that frame the message (Content-Length,
// Transfer-Encoding, Connection) set h, whose keepAlive must hold the
// version's default; every other field is passed to field, whose error ends
// the reading. A length given twice differently, both a length and chunked,
// or a transfer coding other than chunked (errUnsupportedCoding) is an
// error.
func (lr *lineReader) readHeader(h *header, field func(name, value []byte) error) error {
	defer lr.release() // field copies what it keeps
	h.length, h.chunked = -1, false
	for {
		line, err := lr.line()
		if err != nil {
			return unexpected(err)
		}
		if len(line) == 0 {
			break
		}
		name, value, err := splitField(line)
		if err != nil {
			return err
		}
		switch {
		case equalFold(name, "content-length"):
			n, err := parseLength(value)
			if err != nil || h.length >= 0 && h.length != n {
				return fmt.Errorf("%w: Content-Length %.20q", errMalformed, value)
			}
			h.length = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return fmt.Errorf("%w: %.40q (only chunked)", errUnsupportedCoding, value)
			}
			h.chunked = true
		case equalFold(name, "connection"):
			if hasToken(value, "close") {
				h.keepAlive = false
			} else if hasToken(value, "keep-alive") {
				h.keepAlive = true
			}
		default:
			if err := field(name, value); err != nil {
				return err
			}
		}
	}
	if h.chunked && h.length >= 0 {
		return fmt.Errorf("%w: both Content-Length and Transfer-Encoding", errMalformed)
	}
	return nil
}

// splitField splits a header line into its name and trimmed value.
func splitField(line []byte) (name, value []byte, err error) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, fmt.Errorf("%w: header line %.40q", errMalformed, line)
	}
	name = line[:i]
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, fmt.Errorf("%w: header name %.40q", errMalformed, name)
		}
	}
	value = bytes.Trim(line[i+1:], " \t")
	for _, c := range value {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil, nil, fmt.Errorf("%w: control character in header %s", errMalformed, name)
		}
	}
	return name, value, nil
}

// isTokenChar reports whether c may appear in a token (RFC 9110 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token t
// (lower case), ignoring case.
func hasToken(v []byte, t string) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if equalFold(bytes.Trim(item, " \t"), t) {
			return true
		}
	}
	return false
}

// parseLength parses a Content-Length value.
func parseLength(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 18 {
		return 0, fmt.Errorf("%w: Content-Length %q", errMalformed, v)
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: Content-Length %q", errMalformed, v)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// readChunked decodes a chunked body from lr onto dst, failing with
// errTooLarge past limit bytes.
func readChunked(lr *lineReader, dst []byte, limit int64) ([]byte, error) {
	defer lr.release()
	for {
		lr.count = 0
		line, err := lr.line()
		if err != nil {
			return dst, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions are ignored
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 62)
		if err != nil {
			return dst, fmt.Errorf("%w: chunk size %.20q", errMalformed, line)
		}
		if size == 0 {
			for { // trailer section, ignored
				line, err := lr.line()
				if err != nil {
					return dst, err
				}
				if len(line) == 0 {
					return dst, nil
				}
			}
		}
		if int64(len(dst))+int64(size) > limit {
			return dst, errTooLarge
		}
		n := len(dst)
		dst = grow(dst, int(size))
		if _, err := io.ReadFull(lr.br, dst[n:]); err != nil {
			return dst, unexpected(err)
		}
		if line, err := lr.line(); err != nil || len(line) != 0 {
			return dst, fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
	}
}

var errTooLarge = errors.New("body too large")

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n+len(b)/2)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// validValue reports whether s can be sent as a header value as it is.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
