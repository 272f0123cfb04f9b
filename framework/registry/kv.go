package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidKV is returned (wrapped) by the KV methods for a key or
// prefix no store takes (see [ValidateKey]), and for a value past
// MaxValueSize. Nothing is read or written.
var ErrInvalidKV = errors.New("invalid key or value")

// Limits of a KV store's keys and values, the same for every registry.
const (
	MaxKeyLen    = 512
	MaxValueSize = 64 << 10
)

// KV is the small key/value store a registry keeps next to its services,
// shared by the processes that use the same registry: the files of the
// local registry's directory on one host, Consul's KV store for a Consul
// registry, one process's memory for the memory registry. Programs keep
// there the little state their instances share (the bot: the rooms'
// watches of event topics, under "microbot/"). Get it with [KVOf].
//
// Keys are slash-separated paths ("microbot/watches/alerts/slack/C1") of
// printable UTF-8 without a leading '/', at most MaxKeyLen bytes; values
// are at most MaxValueSize bytes. Implementations are safe for concurrent
// use.
type KV interface {
	// List returns the pairs whose key starts with prefix, sorted by key,
	// and an index of what it read. With index 0 it answers at once. Given
	// the index of an earlier List of the same prefix, it first waits until
	// the pairs under prefix may have changed since (a blocking query), or
	// ctx ends (its error is then returned).
	List(ctx context.Context, prefix string, index uint64) ([]KVPair, uint64, error)
	// Put sets key to value.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; deleting a missing key is no error.
	Delete(ctx context.Context, key string) error
}

// KVPair is one key and its value.
type KVPair struct {
	Key   string
	Value []byte
}

// KVer is implemented by registries that keep a KV store.
type KVer interface {
	KV() KV
}

// KVOf returns r's KV store, or false if r keeps none.
func KVOf(r Registry) (KV, bool) {
	k, ok := r.(KVer)
	if !ok {
		return nil, false
	}
	return k.KV(), true
}

// ValidateKey checks a key: not empty, at most MaxKeyLen bytes, UTF-8
// without control characters or spaces other than ' ', not starting with
// '/'. The error wraps ErrInvalidKV.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKV)
	}
	return validateKeyOrPrefix("key", key)
}

// ValidatePrefix checks a prefix of keys as ValidateKey checks a key; the
// empty prefix (every key) is valid.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return validateKeyOrPrefix("prefix", prefix)
}

func validateKeyOrPrefix(what, s string) error {
	switch {
	case len(s) > MaxKeyLen:
		return fmt.Errorf("%w: %s %.32q…: %d bytes, at most %d", ErrInvalidKV, what, s, len(s), MaxKeyLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q: not UTF-8", ErrInvalidKV, what, s)
	case strings.HasPrefix(s, "/"):
		return fmt.Errorf("%w: %s %q starts with '/'", ErrInvalidKV, what, s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r != ' ' && (unicode.IsControl(r) || unicode.IsSpace(r)) }); i >= 0 {
		return fmt.Errorf("%w: %s %q: control character or space at byte %d", ErrInvalidKV, what, s, i)
	}
	return nil
}

// ValidateValue checks the size of a value; the error wraps ErrInvalidKV.
func ValidateValue(key string, value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: value of %q: %d bytes, at most %d", ErrInvalidKV, key, len(value), MaxValueSize)
	}
	return nil
}
