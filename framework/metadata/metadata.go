// Package metadata carries key/value pairs with a request, from a caller's
// context to the server handler's context. The transport sends them as
// headers; keys are canonicalised like HTTP header names.
//
// The bot uses it to tell services who asked (input, user id, room), so a
// service can make its own decisions.
package metadata

import (
	"context"
	"net/textproto"
)

// Metadata is a set of request key/value pairs. Keys are canonical MIME
// header keys ("Micro-User-Id").
type Metadata map[string]string

type contextKey struct{}

// Get returns the value for key, whatever its case.
func (md Metadata) Get(key string) (string, bool) {
	v, ok := md[textproto.CanonicalMIMEHeaderKey(key)]
	return v, ok
}

// Copy returns a copy of md with keys canonicalised.
func (md Metadata) Copy() Metadata {
	out := make(Metadata, len(md))
	for k, v := range md {
		out[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	return out
}

// NewContext returns a context carrying md (replacing any metadata it had).
func NewContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, contextKey{}, md.Copy())
}

// FromContext returns a copy of the metadata ctx carries, if any.
func FromContext(ctx context.Context) (Metadata, bool) {
	md, ok := ctx.Value(contextKey{}).(Metadata)
	if !ok {
		return nil, false
	}
	return md.Copy(), true
}

// MergeContext returns a context whose metadata is ctx's with md's pairs
// added (md wins on a clash).
func MergeContext(ctx context.Context, md Metadata) context.Context {
	out, _ := FromContext(ctx)
	if out == nil {
		out = Metadata{}
	}
	for k, v := range md.Copy() {
		out[k] = v
	}
	return context.WithValue(ctx, contextKey{}, out)
}
