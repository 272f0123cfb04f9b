package client

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/selector"
)

// newSelector returns the default selector over r.
// TODO(framework): use the selector package's implementation once it exists.
func newSelector(r registry.Registry) selector.Selector { return &randomSelector{r: r} }

// randomSelector is a stand-in: it reads the registry on every Select and
// yields the nodes in random order.
type randomSelector struct{ r registry.Registry }

func (s *randomSelector) Select(ctx context.Context, service string) (selector.Next, error) {
	svcs, err := s.r.GetService(ctx, service)
	if err != nil {
		return nil, err
	}
	var nodes []*registry.Node
	for _, svc := range svcs {
		nodes = append(nodes, svc.Nodes...)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("service %s: %w", service, registry.ErrNotFound)
	}
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	i := 0
	return func() (*registry.Node, error) {
		if i >= len(nodes) {
			return nil, fmt.Errorf("service %s: %w", service, selector.ErrNoneAvailable)
		}
		i++
		return nodes[i-1], nil
	}, nil
}

func (s *randomSelector) Mark(string, *registry.Node, error) {}
func (s *randomSelector) Close() error                       { return nil }
func (s *randomSelector) String() string                     { return "random" }
