package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
)

// KV returns Consul's key/value store through the registry's agents (their
// failover order, timeouts and ACL token). Reads are stale reads bounded
// as discovery reads are (see the package documentation), so they go on
// while the servers elect a leader; writes need the leader. A blocking
// List is one of Consul's blocking queries (X-Consul-Index). The token
// needs key_prefix read (List) or write (Put, Delete) on the keys: errors
// for a refusal wrap ErrPermissionDenied and name the permission.
func (r *Registry) KV() registry.KV { return kvStore{r} }

var _ registry.KVer = (*Registry)(nil)

type kvStore struct{ r *Registry }

// List lists the keys under prefix; given an earlier index, it waits (in
// blocking queries of WaitTime each) until Consul's index of them moves.
func (s kvStore) List(ctx context.Context, prefix string, index uint64) ([]registry.KVPair, uint64, error) {
	if err := registry.ValidatePrefix(prefix); err != nil {
		return nil, 0, err
	}
	for {
		kvs, meta, err := read(ctx, s.r, fmt.Sprintf("consul registry: kv: list %q", prefix), index,
			func(a *agent, q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
				return a.api.KV().List(prefix, q)
			})
		if err != nil {
			return nil, 0, err
		}
		if len(kvs) == 0 {
			if err := s.r.hiddenByACL(meta, true, fmt.Sprintf("key:read on %q (key_prefix %q { policy = \"read\" })", prefix, prefix)); err != nil {
				return nil, 0, fmt.Errorf("consul registry: kv: list %q: %w", prefix, err)
			}
		}
		cur := max(meta.LastIndex, 1)
		if index == 0 || cur != index {
			out := make([]registry.KVPair, 0, len(kvs))
			for _, kv := range kvs {
				out = append(out, registry.KVPair{Key: kv.Key, Value: kv.Value})
			}
			return out, cur, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
}

// Put sets key.
func (s kvStore) Put(ctx context.Context, key string, value []byte) error {
	if err := registry.ValidateKey(key); err != nil {
		return err
	}
	if err := registry.ValidateValue(key, value); err != nil {
		return err
	}
	_, err := s.r.call(ctx, fmt.Sprintf("consul registry: kv: put %q", key), -1, s.r.timeout, func(ctx context.Context, a *agent) error {
		_, err := a.api.KV().Put(&api.KVPair{Key: key, Value: value}, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	return err
}

// Delete removes key.
func (s kvStore) Delete(ctx context.Context, key string) error {
	if err := registry.ValidateKey(key); err != nil {
		return err
	}
	_, err := s.r.call(ctx, fmt.Sprintf("consul registry: kv: delete %q", key), -1, s.r.timeout, func(ctx context.Context, a *agent) error {
		_, err := a.api.KV().Delete(key, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	return err
}
