package memory

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/microbot/microbot/framework/registry"
)

// KV returns the registry's key/value store, in this process's memory:
// every user of this Registry sees it, nothing else does.
func (r *Registry) KV() registry.KV { return r.kv }

var _ registry.KVer = (*Registry)(nil)

// kvStore is the memory registry's KV: a map, and an index counting the
// changes.
type kvStore struct {
	mu      sync.Mutex
	pairs   map[string][]byte
	index   uint64
	changed chan struct{} // closed and replaced at each change
}

func newKVStore() *kvStore {
	return &kvStore{pairs: map[string][]byte{}, index: 1, changed: make(chan struct{})}
}

// List returns the pairs under prefix. Given an earlier index, it waits for
// a change to the store first (any change: the waiter then finds the same
// pairs under its prefix at a new index).
func (s *kvStore) List(ctx context.Context, prefix string, index uint64) ([]registry.KVPair, uint64, error) {
	if err := registry.ValidatePrefix(prefix); err != nil {
		return nil, 0, err
	}
	for {
		s.mu.Lock()
		cur, changed := s.index, s.changed
		var out []registry.KVPair
		if index == 0 || cur != index {
			for _, k := range slices.Sorted(maps.Keys(s.pairs)) {
				if strings.HasPrefix(k, prefix) {
					out = append(out, registry.KVPair{Key: k, Value: bytes.Clone(s.pairs[k])})
				}
			}
		}
		s.mu.Unlock()
		if index == 0 || cur != index {
			return out, cur, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// Put sets key to a copy of value.
func (s *kvStore) Put(ctx context.Context, key string, value []byte) error {
	if err := registry.ValidateKey(key); err != nil {
		return err
	}
	if err := registry.ValidateValue(key, value); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs[key] = bytes.Clone(value)
	s.changedLocked()
	return nil
}

// Delete removes key.
func (s *kvStore) Delete(ctx context.Context, key string) error {
	if err := registry.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pairs[key]; ok {
		delete(s.pairs, key)
		s.changedLocked()
	}
	return nil
}

func (s *kvStore) changedLocked() {
	s.index++
	close(s.changed)
	s.changed = make(chan struct{})
}
