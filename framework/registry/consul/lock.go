package consul

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/internal/backoff"
)

// Lock is an exclusive lock held by this process (see Coordinator.Lock).
type Lock struct {
	c    *Coordinator
	key  string
	p    *presence
	lost chan struct{}
	stop context.CancelFunc
	done chan struct{} // the watch ended

	once sync.Once
}

// Lock blocks until this process holds the lock named key (a path under the
// Coordinator's prefix, "lock/" + key), or ctx ends. While another process
// holds it, Lock waits with a blocking query on the key and tries to
// acquire it as soon as it is free; errors talking to Consul are retried
// with backoff (and logged), so Lock only returns an error when ctx ends or
// the Coordinator is closed.
//
// The Lock returned is held until Unlock, or until Lost is closed: the
// presence was lost, or Consul gave the key to another session.
func (c *Coordinator) Lock(ctx context.Context, key string) (*Lock, error) {
	if key == "" || strings.HasPrefix(key, "/") {
		return nil, fmt.Errorf("consul coordinator: lock key %q: want a relative key", key)
	}
	full := c.prefix + "lock/" + key
	var index uint64
	waitingLogged := ""
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		p, err := c.presence(ctx)
		if err != nil {
			return nil, fmt.Errorf("consul coordinator: lock %s: %w", key, err)
		}
		pair, meta, err := c.getKey(ctx, p, full, index)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("consul coordinator: lock %s: %w", key, ctx.Err())
			}
			index = 0
			select {
			case <-p.lost:
				continue
			default:
			}
			d := bo.Next()
			c.log.Warn("consul coordinator: reading a lock failed; retrying", "lock", key, "err", err, "retry_in", d.Round(time.Millisecond))
			backoff.Sleep(ctx, d)
			continue
		}
		bo.Reset()
		index = nextIndex(index, meta.LastIndex)
		switch {
		case pair != nil && pair.Session == p.session:
			return c.held(p, key, full), nil
		case pair == nil || pair.Session == "":
			ok, err := c.acquire(ctx, p, full)
			switch {
			case err != nil:
				c.log.Warn("consul coordinator: acquiring a lock failed", "lock", key, "err", err)
				if strings.Contains(err.Error(), "invalid session") {
					p.markLost()
				}
				backoff.Sleep(ctx, bo.Next())
			case ok:
				c.log.Info("consul coordinator: lock acquired", "lock", key)
				return c.held(p, key, full), nil
			default:
				// Another process was quicker, or the lock-delay of the last
				// holder's session is not over: look again shortly.
				backoff.Sleep(ctx, max(c.lockDelay/4, 20*time.Millisecond))
			}
			index = 0
		default:
			if holder := string(pair.Value); holder != waitingLogged {
				waitingLogged = holder
				c.log.Info("consul coordinator: another instance holds the lock; waiting", "lock", key, "holder", holder)
			}
		}
	}
}

// getKey reads a key, with a blocking query when index > 0 that also ends
// when p is lost.
func (c *Coordinator) getKey(ctx context.Context, p *presence, key string, index uint64) (*api.KVPair, *api.QueryMeta, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	q := api.QueryOptions{}
	timeout := c.r.timeout
	if index > 0 {
		q.WaitIndex, q.WaitTime = index, WaitTime
		timeout += WaitTime + WaitTime/16
	}
	var pair *api.KVPair
	var meta *api.QueryMeta
	_, err := c.r.call(ctx, "consul coordinator: reading "+key, -1, timeout, func(ctx context.Context, a *agent) error {
		var err error
		pair, meta, err = a.api.KV().Get(key, q.WithContext(ctx))
		return err
	})
	return pair, meta, err
}

// acquire tries to take key with p's session.
func (c *Coordinator) acquire(ctx context.Context, p *presence, key string) (bool, error) {
	var ok bool
	_, err := c.r.call(ctx, "consul coordinator: acquiring "+key, p.agent, c.r.timeout, func(ctx context.Context, a *agent) error {
		var err error
		ok, _, err = a.api.KV().Acquire(&api.KVPair{Key: key, Value: c.holder, Session: p.session}, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	return ok, err
}

// held starts watching a lock just acquired.
func (c *Coordinator) held(p *presence, key, full string) *Lock {
	ctx, stop := context.WithCancel(c.bg)
	l := &Lock{c: c, key: full, p: p, lost: make(chan struct{}), stop: stop, done: make(chan struct{})}
	go l.watch(ctx, key)
	return l
}

// watch closes l.lost when the presence is lost or Consul no longer has
// the key held by its session.
func (l *Lock) watch(ctx context.Context, name string) {
	defer close(l.done)
	c := l.c
	var index uint64
	bo := backoff.Backoff{Min: c.interval, Max: c.ttl}
	for {
		select {
		case <-l.p.lost:
			l.markLost("the presence was lost", name)
			return
		case <-ctx.Done():
			return
		default:
		}
		pair, meta, err := c.getKey(ctx, l.p, l.key, index)
		if err != nil {
			// Consul cannot be read: the presence decides (it steps down
			// when no pass reaches Consul in time).
			index = 0
			t := time.NewTimer(bo.Next())
			select {
			case <-t.C:
			case <-l.p.lost:
			case <-ctx.Done():
			}
			t.Stop()
			continue
		}
		bo.Reset()
		if pair == nil || pair.Session != l.p.session {
			l.markLost("Consul no longer has the key held by this instance's session", name)
			return
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

func (l *Lock) markLost(why, name string) {
	l.once.Do(func() {
		l.c.log.Warn("consul coordinator: lock lost", "lock", name, "why", why)
		close(l.lost)
	})
}

// Lost is closed when the lock is lost: this process must stop what the
// lock guards at once (another may start after the lock-delay).
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Unlock releases the lock (no lock-delay applies: another process may take
// it at once). Releasing a lock already lost does nothing.
func (l *Lock) Unlock(ctx context.Context) error {
	l.stop()
	<-l.done
	select {
	case <-l.lost:
		return nil
	default:
	}
	l.once.Do(func() { close(l.lost) })
	c := l.c
	_, err := c.r.call(ctx, "consul coordinator: releasing "+l.key, l.p.agent, c.r.timeout, func(ctx context.Context, a *agent) error {
		_, _, err := a.api.KV().Release(&api.KVPair{Key: l.key, Session: l.p.session}, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("consul coordinator: unlocking: %w", err)
	}
	c.log.Info("consul coordinator: lock released", "lock", strings.TrimPrefix(l.key, c.prefix+"lock/"))
	return nil
}
