// Package registry is the service registry of the framework: where services
// announce their nodes and endpoints, and where callers and the bot look them
// up and watch them change.
//
// The packages memory, local and consul below this one are the
// implementations shipped with microbot; package framework's table of
// registries builds them by the name `--registry=NAME` gives. Each also
// keeps a small key/value store next to the services, shared by the
// processes that use the same registry ([KV], [KVOf]).
package registry

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) by GetService when no node of the service
// is registered. Compare with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrWatcherStopped is returned by Watcher.Next once the watcher is stopped or
// its context is done.
var ErrWatcherStopped = errors.New("watcher stopped")

// Registry is a service registry.
type Registry interface {
	// Register announces every node of s. The nodes expire after the TTL given
	// with [WithTTL] unless registered again before then.
	Register(ctx context.Context, s *Service, opts ...RegisterOption) error
	// Deregister removes every node of s at once.
	Deregister(ctx context.Context, s *Service) error
	// GetService returns the service by name, one entry per version, holding
	// only live nodes. It returns an error wrapping ErrNotFound if none is.
	GetService(ctx context.Context, name string) ([]*Service, error)
	// ListServices returns every registered service (name and version; the
	// nodes and endpoints may be left out), sorted by name.
	ListServices(ctx context.Context) ([]*Service, error)
	// Watch streams changes until ctx is done or the watcher is stopped.
	Watch(ctx context.Context, opts ...WatchOption) (Watcher, error)
	// String names the implementation ("memory", "local", "consul").
	String() string
}

// Watcher streams registry changes.
type Watcher interface {
	// Next blocks until the next change. It returns an error wrapping
	// ErrWatcherStopped after Stop, or another error if the watch broke (the
	// caller should then re-list and watch again).
	Next() (*Result, error)
	// Stop ends the watch and unblocks Next.
	Stop()
}

// Actions carried by a watch [Result].
const (
	Create = "create"
	Update = "update"
	Delete = "delete"
)

// Result is one change seen by a Watcher. For Delete, Service holds the nodes
// that went away; other nodes of the same service may still be up.
type Result struct {
	Action  string
	Service *Service
}

// Service is a named, versioned service and its nodes.
type Service struct {
	Name      string            `json:"name"`
	Version   string            `json:"version"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Endpoints []*Endpoint       `json:"endpoints,omitempty"`
	Nodes     []*Node           `json:"nodes,omitempty"`
}

// Node is one running instance of a service.
type Node struct {
	ID       string            `json:"id"`
	Address  string            `json:"address"` // host:port
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Endpoint is a method a service answers, with the schema of its request and
// response so a person can see what to send.
type Endpoint struct {
	Name     string            `json:"name"` // "Say.Hello"
	Request  *Value            `json:"request,omitempty"`
	Response *Value            `json:"response,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Value describes a type: a message with its fields, or a scalar.
type Value struct {
	Name   string   `json:"name"` // field name, or the type's name at the top
	Type   string   `json:"type"` // "string", "int32", "[]string", "Request", ...
	Values []*Value `json:"values,omitempty"`
}

// RegisterOptions are the options of one Register call.
type RegisterOptions struct {
	// TTL is how long the nodes live without being registered again. Zero
	// means the implementation's default.
	TTL time.Duration
}

// RegisterOption sets a RegisterOptions field.
type RegisterOption func(*RegisterOptions)

// WithTTL sets how long the nodes live without a new Register.
func WithTTL(d time.Duration) RegisterOption { return func(o *RegisterOptions) { o.TTL = d } }

// WatchOptions are the options of one Watch call.
type WatchOptions struct {
	// Service restricts the watch to one service name; empty means all.
	Service string
}

// WatchOption sets a WatchOptions field.
type WatchOption func(*WatchOptions)

// WithService restricts a watch to the named service.
func WithService(name string) WatchOption { return func(o *WatchOptions) { o.Service = name } }
