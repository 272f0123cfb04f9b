// Package plugin is the shape of microbot's plugin tables: for each kind of
// plugin a flag picks by name (--registry, --selector, --inputs, --broker)
// or a message picks by Content-Type (codecs), one Table, declared as a
// package-level variable in the package that picks from it, and written
// there once, as a literal that names every implementation:
//
//	// registries is the table --registry picks from.
//	var registries = plugin.NewTable("registry", map[string]func(addrs []string) (registry.Registry, error){
//		"local":  newLocal,
//		"memory": newMemory,
//		"consul": newConsul,
//	})
//
//	r, err := registries.Get(name) // `registry "x": unknown (have [consul local memory])`
//
// Nothing adds to a table at run time: no init() registration, no blank
// imports. Adding an implementation means adding a line to its table, where
// a reader of the code that picks it sees every choice. The tables are:
//
//	registry   framework (plugins.go)        --registry
//	selector   framework (plugins.go)        --selector
//	broker     framework (plugins.go)        --broker
//	codec      framework/codec               Content-Type of a call
//	input      cmd/microbot (inputs.go)      --inputs
package plugin

import (
	"fmt"
	"maps"
	"slices"
)

// Table maps names to the implementations of one kind of plugin. It is
// fixed when made, so it is safe for concurrent use.
type Table[T any] struct {
	kind  string // "registry", "input": used in messages
	items map[string]T
}

// NewTable returns a table of the kind named in its messages, holding a copy
// of items.
func NewTable[T any](kind string, items map[string]T) Table[T] {
	return Table[T]{kind: kind, items: maps.Clone(items)}
}

// Names returns the names in the table, sorted.
func (t Table[T]) Names() []string { return slices.Sorted(maps.Keys(t.items)) }

// Lookup returns the item under name and whether there is one.
func (t Table[T]) Lookup(name string) (T, bool) {
	item, ok := t.items[name]
	return item, ok
}

// Get returns the item under name, or an error that names the valid choices.
func (t Table[T]) Get(name string) (T, error) {
	item, ok := t.items[name]
	if !ok {
		var zero T
		return zero, fmt.Errorf("%s %q: unknown (have %v)", t.kind, name, t.Names())
	}
	return item, nil
}
