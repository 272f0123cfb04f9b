// Package rpcerr defines the error the framework carries between client and
// server: {id, code, detail, status}, sent as JSON in a response header.
//
// A handler returns one of these (or any error, which becomes a 500); the
// client gets it back as an *Error that errors.As can find.
package rpcerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an RPC error. Code is an HTTP status code; ID names the service
// (or component) that produced it; Detail is the human message.
type Error struct {
	ID     string `json:"id"`
	Code   int32  `json:"code"`
	Detail string `json:"detail"`
	Status string `json:"status"`
	// Plain marks an error made from something else than an *Error: a
	// handler's plain Go error, a panic, the end of its context. It has a
	// code for microbot's callers, but go-micro's servers send such errors
	// as their text alone, without a code, and go-micro's client retries
	// what has one of its retried codes (500, 408) even though the call
	// ran: the transport sends it to go-micro callers as go-micro's servers
	// do. It does not travel itself.
	Plain bool `json:"-"`
}

// Error returns the detail, prefixed with the id where there is one.
func (e *Error) Error() string {
	if e.ID == "" {
		return e.Detail
	}
	return e.ID + ": " + e.Detail
}

// Is reports whether target is an *Error with the same code (and id, when
// target has one), so errors.Is(err, errors.NotFound("", "")) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.ID == "" || t.ID == e.ID)
}

// New returns an error with the given id, detail and code.
func New(id, detail string, code int32) *Error {
	return &Error{ID: id, Code: code, Detail: detail, Status: http.StatusText(int(code))}
}

// Parse decodes an error from its JSON form. Text that is not such JSON
// becomes a 500 with the text as detail.
func Parse(s string) *Error {
	e := new(Error)
	if err := json.Unmarshal([]byte(s), e); err != nil || (e.Code == 0 && e.Detail == "") {
		return InternalServerError("", "%s", s)
	}
	return e
}

// Marshal returns the JSON form of e.
func (e *Error) Marshal() string {
	b, _ := json.Marshal(e) // a struct of strings and an int cannot fail
	return string(b)
}

// FromError returns err as an *Error: itself if it wraps one, otherwise a
// Plain 500 carrying its text.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = InternalServerError("", "%s", err.Error())
	e.Plain = true
	return e
}

// BadRequest is a 400: the request was malformed.
func BadRequest(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusBadRequest)
}

// Unauthorized is a 401.
func Unauthorized(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusUnauthorized)
}

// Forbidden is a 403.
func Forbidden(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusForbidden)
}

// NotFound is a 404: unknown service or endpoint.
func NotFound(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusNotFound)
}

// Timeout is a 408: the caller's deadline passed.
func Timeout(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusRequestTimeout)
}

// RequestEntityTooLarge is a 413: the body is over the server's limit.
func RequestEntityTooLarge(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusRequestEntityTooLarge)
}

// UnsupportedMediaType is a 415: no codec for the Content-Type.
func UnsupportedMediaType(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusUnsupportedMediaType)
}

// InternalServerError is a 500.
func InternalServerError(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusInternalServerError)
}

// ServiceUnavailable is a 503: no node could be reached.
func ServiceUnavailable(id, format string, a ...any) *Error {
	return New(id, fmt.Sprintf(format, a...), http.StatusServiceUnavailable)
}
