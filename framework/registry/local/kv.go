package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/registry"
)

// kvDir is the subdirectory of the registry directory holding the KV
// store; its leading dot keeps the registry's own reading away from it.
const kvDir = ".kv"

// KV returns the registry's key/value store: one file per key in the
// subdirectory .kv of the registry directory, shared by every process
// using the directory. A file is named by a hash of its key and holds the
// key and the value (JSON); it is written atomically (temporary file,
// fsync, rename), so readers see a value whole, and writers of different
// keys never meet. A blocking List notices a change made in this process
// at once, and one made by another process within the poll interval
// (WithPollInterval).
func (r *Registry) KV() registry.KV { return r.kv }

var _ registry.KVer = (*Registry)(nil)

// kvStore is the local registry's KV.
type kvStore struct {
	dir  string
	poll time.Duration

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each change made here
}

func newKVStore(dir string, poll time.Duration) *kvStore {
	return &kvStore{dir: dir, poll: poll, changed: make(chan struct{})}
}

// kvFile is what a key's file holds.
type kvFile struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// fileName is the file of key.
func (s *kvStore) fileName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:20]) + ext
}

// List reads the pairs under prefix; their index is a hash of them (so an
// index tells the pairs apart, whichever process wrote them). Given an
// earlier index, it reads again at each change made in this process and
// every poll interval, until the pairs differ.
func (s *kvStore) List(ctx context.Context, prefix string, index uint64) ([]registry.KVPair, uint64, error) {
	if err := registry.ValidatePrefix(prefix); err != nil {
		return nil, 0, err
	}
	var tick *time.Ticker
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		pairs, cur, err := s.read(prefix)
		if err != nil || index == 0 || cur != index {
			if tick != nil {
				tick.Stop()
			}
			return pairs, cur, err
		}
		if tick == nil {
			tick = time.NewTicker(s.poll)
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			tick.Stop()
			return nil, 0, ctx.Err()
		}
	}
}

// read returns the pairs under prefix, sorted, and their hash.
func (s *kvStore) read(prefix string) ([]registry.KVPair, uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("local registry: kv: %w", err)
	}
	var pairs []registry.KVPair
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ext) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, 0, fmt.Errorf("local registry: kv: %w", err)
		}
		var f kvFile
		if err := json.Unmarshal(data, &f); err != nil || s.fileName(f.Key) != name {
			continue // not one of ours, or damaged: it holds no key
		}
		if strings.HasPrefix(f.Key, prefix) {
			pairs = append(pairs, registry.KVPair{Key: f.Key, Value: f.Value})
		}
	}
	slices.SortFunc(pairs, func(a, b registry.KVPair) int { return strings.Compare(a.Key, b.Key) })
	h := fnv.New64a()
	for _, p := range pairs {
		fmt.Fprintf(h, "%d:%s%d:", len(p.Key), p.Key, len(p.Value))
		h.Write(p.Value)
	}
	sum := h.Sum64()
	if sum == 0 {
		sum = 1 // 0 asks for no wait
	}
	return pairs, sum, nil
}

// Put writes key's file.
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
	data, err := json.Marshal(kvFile{Key: key, Value: value})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("local registry: kv: %w", err)
	}
	if err := writeFileIn(s.dir, s.fileName(key), data); err != nil {
		return fmt.Errorf("local registry: kv: put %q: %w", key, err)
	}
	s.wake()
	return nil
}

// Delete removes key's file.
func (s *kvStore) Delete(ctx context.Context, key string) error {
	if err := registry.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.dir, s.fileName(key))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local registry: kv: delete %q: %w", key, err)
	}
	s.wake()
	return nil
}

// wake wakes the blocking Lists of this process.
func (s *kvStore) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}
