package consul

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/internal/node"
)

// maxClaimKeys bounds the keys of one claim: Consul's transactions take at
// most 128 operations (two per key here).
const maxClaimKeys = 32

// Claim records, for every process of the Coordinator's prefix, that
// something known by any of keys is being handled, and reports whether it
// was the first to: false when one of keys was claimed already (by this
// process or another). It is how several instances receiving the same
// deliveries (a retry of Slack's on another connection) handle each once.
//
// The claim is one Consul transaction: for each key, its entry
// (prefix "seen/" + a SHA-256 of the key) must not exist, and is created
// held by a claims session. Claims sessions have a TTL of WithClaimTTL and
// no checks, are never renewed and delete their keys when they end; each
// process starts a new one every quarter of the TTL. So a claim lives
// between three quarters of the TTL and twice it (15 to 40 minutes by
// default), whatever becomes of the process that made it, and the entries
// never outnumber the claims made in twice the TTL.
func (c *Coordinator) Claim(ctx context.Context, keys []string) (bool, error) {
	if len(keys) == 0 {
		return true, nil
	}
	if len(keys) > maxClaimKeys {
		return false, fmt.Errorf("consul coordinator: claim of %d keys: at most %d", len(keys), maxClaimKeys)
	}
	for try := 0; ; try++ {
		sid, err := c.ttlSession(ctx, c.claimTTL)
		if err != nil {
			return false, err
		}
		// The value tells this claim from any other, should an answer be
		// lost and the transaction sent again through another agent.
		nonce := []byte(node.NewUUID())
		ops := make(api.TxnOps, 0, 2*len(keys))
		for _, k := range keys {
			full := c.claimKey(k)
			ops = append(ops,
				&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: full}},
				&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: full, Value: nonce, Session: sid}},
			)
		}
		var ok bool
		var rsp *api.TxnResponse
		_, err = c.r.call(ctx, "consul coordinator: claiming", -1, c.r.timeout, func(ctx context.Context, a *agent) error {
			var err error
			ok, rsp, _, err = a.api.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
			return err
		})
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
		for _, e := range rsp.Errors {
			if e.OpIndex >= 0 && e.OpIndex < len(ops) && ops[e.OpIndex].KV.Verb == api.KVCheckNotExists {
				return c.claimedBy(ctx, ops[e.OpIndex].KV.Key, nonce)
			}
		}
		// The claims session is gone (Consul ended it early, e.g. after its
		// node failed): start a new one, once.
		c.dropTTLSession(c.claimTTL, sid)
		if try > 0 {
			return false, fmt.Errorf("consul coordinator: claim refused: %s", txnErrors(rsp.Errors))
		}
	}
}

// txnErrors says why Consul rolled a transaction back.
func txnErrors(errs api.TxnErrors) string {
	whats := make([]string, 0, len(errs))
	for _, e := range errs {
		whats = append(whats, e.What)
	}
	return strings.Join(whats, "; ")
}

// claimedBy reports whether the claim entry key is the one made with nonce:
// a transaction applied whose answer was lost, then sent again.
func (c *Coordinator) claimedBy(ctx context.Context, key string, nonce []byte) (bool, error) {
	var pair *api.KVPair
	_, err := c.r.call(ctx, "consul coordinator: reading a claim", -1, c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		pair, _, err = a.api.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
		return err
	})
	if err != nil {
		return false, err
	}
	return pair != nil && bytes.Equal(pair.Value, nonce), nil
}

// claimKey is the KV key of a claim.
func (c *Coordinator) claimKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return c.prefix + "seen/" + hex.EncodeToString(sum[:16])
}

// ttlSession returns the current session of ttl (claims', a memo's),
// starting a new one when the last is a quarter of ttl old. Such sessions
// have no checks, are never renewed, and delete their keys when they end:
// a key lives between three quarters of ttl and twice it.
func (c *Coordinator) ttlSession(ctx context.Context, ttl time.Duration) (string, error) {
	c.ttlMu.Lock()
	defer c.ttlMu.Unlock()
	if s, ok := c.ttlSessions[ttl]; ok && time.Since(s.at) < ttl/4 {
		return s.id, nil
	}
	var id string
	_, err := c.r.call(ctx, "consul coordinator: creating a session of "+ttl.String(), -1, c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		id, _, err = a.api.Session().CreateNoChecks(&api.SessionEntry{
			Name:      c.name + " " + ttl.String() + " " + c.id,
			TTL:       ttl.String(),
			Behavior:  api.SessionBehaviorDelete,
			LockDelay: time.Millisecond, // its keys are deleted, never taken again
		}, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	if err != nil {
		return "", err
	}
	c.ttlSessions[ttl] = ttlSession{id: id, at: time.Now()}
	return id, nil
}

// dropTTLSession forgets sid, a session of ttl Consul no longer has.
func (c *Coordinator) dropTTLSession(ttl time.Duration, sid string) {
	c.ttlMu.Lock()
	defer c.ttlMu.Unlock()
	if c.ttlSessions[ttl].id == sid {
		delete(c.ttlSessions, ttl)
	}
}

// Memo is a map of values that forget themselves, shared by the processes
// of a Coordinator (see Coordinator.Memo).
type Memo struct {
	c      *Coordinator
	prefix string
	ttl    time.Duration
}

// Memo returns the memo under the Coordinator's prefix + name + "/": each
// value is kept by the first Put of its key, and lives between three
// quarters of ttl and twice it (ttl between 10 s and 24 h), held by a
// session like the claims' (see Claim), so the memo never outgrows the
// Puts of twice ttl.
func (c *Coordinator) Memo(name string, ttl time.Duration) (*Memo, error) {
	if ttl < 10*time.Second || ttl > 24*time.Hour {
		return nil, fmt.Errorf("consul coordinator: memo %s: TTL %v is outside Consul's bounds for a session's TTL (10s to 24h)", name, ttl)
	}
	return &Memo{c: c, prefix: c.prefix + strings.Trim(name, "/") + "/", ttl: ttl}, nil
}

// key is the KV key of a memo's key: a hash, so any string will do.
func (m *Memo) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	return m.prefix + hex.EncodeToString(sum[:16])
}

// Get returns the value of key, nil if there is none.
func (m *Memo) Get(ctx context.Context, key string) ([]byte, error) {
	var pair *api.KVPair
	_, err := m.c.r.call(ctx, "consul memo: reading", -1, m.c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		pair, _, err = a.api.KV().Get(m.key(key), (&api.QueryOptions{}).WithContext(ctx))
		return err
	})
	if err != nil || pair == nil {
		return nil, err
	}
	return pair.Value, nil
}

// Put keeps value as the value of key, unless key has one already; false
// then.
func (m *Memo) Put(ctx context.Context, key string, value []byte) (bool, error) {
	full := m.key(key)
	for try := 0; ; try++ {
		sid, err := m.c.ttlSession(ctx, m.ttl)
		if err != nil {
			return false, err
		}
		ops := api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: full}},
			{KV: &api.KVTxnOp{Verb: api.KVLock, Key: full, Value: value, Session: sid}},
		}
		var ok bool
		var rsp *api.TxnResponse
		_, err = m.c.r.call(ctx, "consul memo: writing", -1, m.c.r.timeout, func(ctx context.Context, a *agent) error {
			var err error
			ok, rsp, _, err = a.api.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
			return err
		})
		if err != nil || ok {
			return ok, err
		}
		for _, e := range rsp.Errors {
			if e.OpIndex == 0 {
				return false, nil // it has a value
			}
		}
		m.c.dropTTLSession(m.ttl, sid)
		if try > 0 {
			return false, fmt.Errorf("consul memo: write refused: %s", txnErrors(rsp.Errors))
		}
	}
}

// Store is a small key-value store under a prefix of Consul's KV store,
// with versions for compare-and-set (see Coordinator.Store).
type Store struct {
	c      *Coordinator
	prefix string
}

// Store returns the store of the keys under the Coordinator's prefix +
// name + "/".
func (c *Coordinator) Store(name string) *Store {
	return &Store{c: c, prefix: c.prefix + strings.Trim(name, "/") + "/"}
}

// errBadKey is returned for a key Consul cannot hold under the prefix.
var errBadKey = errors.New("consul store: a key must be non-empty and hold no '/'")

func (s *Store) key(k string) (string, error) {
	if k == "" || strings.Contains(k, "/") {
		return "", fmt.Errorf("%w (got %q)", errBadKey, k)
	}
	return s.prefix + k, nil
}

// Create stores value under key if there is no such key; false if there is.
func (s *Store) Create(ctx context.Context, key string, value []byte) (bool, error) {
	full, err := s.key(key)
	if err != nil {
		return false, err
	}
	var ok bool
	_, err = s.c.r.call(ctx, "consul store: creating "+full, -1, s.c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		ok, _, err = a.api.KV().CAS(&api.KVPair{Key: full, Value: value, ModifyIndex: 0}, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	return ok, err
}

// Get returns the value under key and its version, or nil and 0 if there
// is none.
func (s *Store) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	full, err := s.key(key)
	if err != nil {
		return nil, 0, err
	}
	var pair *api.KVPair
	_, err = s.c.r.call(ctx, "consul store: reading "+full, -1, s.c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		pair, _, err = a.api.KV().Get(full, (&api.QueryOptions{}).WithContext(ctx))
		return err
	})
	if err != nil || pair == nil {
		return nil, 0, err
	}
	return pair.Value, pair.ModifyIndex, nil
}

// Range calls f with every key of the store (without the prefix), its value
// and version, until f returns false.
func (s *Store) Range(ctx context.Context, f func(key string, value []byte, version uint64) bool) error {
	var pairs api.KVPairs
	_, err := s.c.r.call(ctx, "consul store: listing "+s.prefix, -1, s.c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		pairs, _, err = a.api.KV().List(s.prefix, (&api.QueryOptions{}).WithContext(ctx))
		return err
	})
	if err != nil {
		return err
	}
	for _, p := range pairs {
		k := strings.TrimPrefix(p.Key, s.prefix)
		if k == "" || strings.Contains(k, "/") {
			continue
		}
		if !f(k, p.Value, p.ModifyIndex) {
			break
		}
	}
	return nil
}

// Delete removes key if its version is still version; false if it changed
// or is gone.
func (s *Store) Delete(ctx context.Context, key string, version uint64) (bool, error) {
	full, err := s.key(key)
	if err != nil {
		return false, err
	}
	if version == 0 {
		return false, fmt.Errorf("consul store: deleting %s: version 0 names no stored value", full)
	}
	// Consul's delete-cas of a missing key succeeds; checking the index
	// first fails for it, as for a changed one.
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: full, Index: version}},
		{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: full}},
	}
	var ok bool
	_, err = s.c.r.call(ctx, "consul store: deleting "+full, -1, s.c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		ok, _, _, err = a.api.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
		return err
	})
	return ok, err
}
