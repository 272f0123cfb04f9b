// Package plugin is the table of named implementations behind
// `--registry=NAME`, `--inputs=NAME,...` and `--selector=NAME`: packages add
// themselves by name (usually in init, like database/sql drivers) and the
// binary looks them up by the name a flag gives.
package plugin

import (
	"fmt"
	"sort"
	"sync"
)

// Table maps names to implementations of one kind. The zero value is not
// usable; use [NewTable]. It is safe for concurrent use.
type Table[T any] struct {
	kind string // "registry", "input": used in messages

	mu    sync.RWMutex
	items map[string]T
}

// NewTable returns an empty table of the kind named in its messages.
func NewTable[T any](kind string) *Table[T] {
	return &Table[T]{kind: kind, items: map[string]T{}}
}

// Add puts item under name. It panics if the name is taken: two packages
// claiming one name is a programming error, found at start-up.
func (t *Table[T]) Add(name string, item T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.items[name]; dup {
		panic(fmt.Sprintf("%s: %q added twice", t.kind, name))
	}
	t.items[name] = item
}

// Names returns the names in the table, sorted.
func (t *Table[T]) Names() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := make([]string, 0, len(t.items))
	for n := range t.items {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the item under name, or an error that names the valid choices.
func (t *Table[T]) Get(name string) (T, error) {
	t.mu.RLock()
	item, ok := t.items[name]
	t.mu.RUnlock()
	if !ok {
		var zero T
		return zero, fmt.Errorf("%s %q: unknown (have %v)", t.kind, name, t.Names())
	}
	return item, nil
}
