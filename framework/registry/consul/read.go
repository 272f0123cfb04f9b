package consul

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// DefaultMaxStale is how long the Consul server answering a discovery read
// may have been out of touch with its leader (LastContact) before the
// registry asks again with a consistent read. It is Consul's raft heartbeat
// timeout at its default performance setting (raft_multiplier 5), after
// which a follower itself concludes that it lost its leader, and Consul's
// own bound for stale DNS reads before Consul 1.0. Servers of a healthy
// cluster answer within milliseconds of their leader.
const DefaultMaxStale = 5 * time.Second

const (
	// fallbackTimeout bounds each attempt of the consistent read asked for
	// when a stale answer is past the bound. During an election a server
	// holds such a read for up to 7 s (rpc_hold_timeout) waiting for a
	// leader; the stale answer is better than that wait.
	fallbackTimeout = time.Second
	// fallbackPause is how long after a failed consistent read the
	// registry uses stale answers without trying again.
	fallbackPause = 2 * time.Second
)

// readState is the stale-read bookkeeping of a Registry.
type readState struct {
	pause        time.Duration // fallbackPause; changed by tests
	fallbackBusy atomic.Bool   // one consistent fallback in flight at a time
	pauseUntil   atomic.Int64  // unix nanos: no fallback before
	staleLogged  atomic.Bool   // a warning about stale answers is standing
}

// read runs one discovery read (list, get, or a watch's blocking query when
// index > 0) through the agents, as what.
//
// Unless the registry is Consistent, any server may answer (Consul's stale
// mode), so reads go on while the cluster has no leader. If the answering
// server says it has not heard from a leader for longer than the bound
// (MaxStale), read asks again with a consistent read, which only a server in
// touch with a leader can give (bounded by fallbackTimeout per agent, one
// at a time); if that fails too, as it does during an election, the stale
// answer is used and a warning logged once, until answers are fresh again.
func read[T any](ctx context.Context, r *Registry, what string, index uint64, do func(a *agent, q *api.QueryOptions) (T, *api.QueryMeta, error)) (T, *api.QueryMeta, error) {
	timeout := r.timeout
	q := api.QueryOptions{AllowStale: !r.consistent}
	if index > 0 {
		q.WaitIndex, q.WaitTime = index, WaitTime
		timeout += WaitTime + WaitTime/16 // Consul adds up to wait/16 of jitter
	}
	var v T
	var meta *api.QueryMeta
	_, err := r.call(ctx, what, -1, timeout, func(ctx context.Context, a *agent) error {
		var err error
		v, meta, err = do(a, q.WithContext(ctx))
		return err
	})
	if err != nil {
		var zero T
		return zero, nil, err
	}
	if r.consistent || meta.LastContact <= r.maxStale {
		if r.reads.staleLogged.Load() && r.reads.staleLogged.CompareAndSwap(true, false) {
			r.log.Info("Consul answers are fresh again", "query", what, "last_contact", meta.LastContact)
		}
		return v, meta, nil
	}
	if time.Now().UnixNano() < r.reads.pauseUntil.Load() || !r.reads.fallbackBusy.CompareAndSwap(false, true) {
		r.staleAnswer(what, meta, nil)
		return v, meta, nil
	}
	defer r.reads.fallbackBusy.Store(false)
	var cv T
	var cmeta *api.QueryMeta
	_, cerr := r.call(ctx, what+" (consistent, the stale answer being too old)", -1, min(r.timeout, fallbackTimeout), func(ctx context.Context, a *agent) error {
		var err error
		cv, cmeta, err = do(a, (&api.QueryOptions{}).WithContext(ctx))
		return err
	})
	if cerr == nil {
		return cv, cmeta, nil
	}
	r.reads.pauseUntil.Store(time.Now().Add(r.reads.pause).UnixNano())
	r.staleAnswer(what, meta, cerr)
	return v, meta, nil
}

// staleAnswer logs, once until answers are fresh again, that a read used an
// answer older than the bound; later ones are logged at debug level.
func (r *Registry) staleAnswer(what string, meta *api.QueryMeta, fallbackErr error) {
	args := []any{"query", what, "last_contact", meta.LastContact, "known_leader", meta.KnownLeader, "max_stale", r.maxStale}
	if fallbackErr != nil {
		args = append(args, "consistent_read_err", fallbackErr)
	}
	if r.reads.staleLogged.CompareAndSwap(false, true) {
		r.log.Warn("Consul answered from a server out of touch with its leader for longer than the bound and no consistent read could be made (leader election or partition?); using the stale answer", args...)
		return
	}
	r.log.Debug("stale Consul answer used", args...)
}
