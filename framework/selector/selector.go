// Package selector picks the node of a service a call goes to. It caches the
// registry's node lists, invalidates them from a registry watch, and avoids
// for a short while a node that has just failed.
//
// New returns the Selector of this package over a registry.Registry, with
// the strategy Random (the default) or RoundRobin (package framework's table
// of selectors picks one by the name --selector gives). Node lists
// are cached per service and dropped as soon as the registry's watch says
// the service changed, with a TTL (CacheTTL) as a backstop for lost events;
// when the registry cannot be reached the last known list is used.
package selector

import (
	"context"
	"errors"

	"github.com/microbot/microbot/framework/registry"
)

// ErrNoneAvailable is returned (wrapped) when a service has no node left to try.
var ErrNoneAvailable = errors.New("no node available")

// Selector chooses nodes for calls to a service.
type Selector interface {
	// Select returns a Next that yields the service's nodes in the order the
	// strategy wants them tried. It fails with an error wrapping
	// registry.ErrNotFound for an unknown service.
	Select(ctx context.Context, service string) (Next, error)
	// Mark reports the outcome of a call to node: a non-nil err is a failure
	// of the node (connection refused, reset), so it is avoided for a while.
	Mark(service string, node *registry.Node, err error)
	// Close stops the selector's watch.
	Close() error
	// String names the strategy ("random", "roundrobin").
	String() string
}

// VersionSelector is a Selector that also tells a service's nodes apart by
// the version they are registered under. The Selector New returns is one.
// The http broker uses it: its subscribers of a topic are registered under
// one version per queue group (and one for plain subscribers), and each
// version gets the message.
type VersionSelector interface {
	Selector
	// SelectVersions returns, for each version of service, a Next over the
	// nodes registered under it, in the order Select would try them. It
	// fails as Select does.
	SelectVersions(ctx context.Context, service string) (map[string]Next, error)
}

// Next returns the next node to try, or an error wrapping ErrNoneAvailable.
type Next func() (*registry.Node, error)
