package slack

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries expire: when full, the least
// recently used entry goes. It backs the user-name cache, the dedup set of
// deliveries and the response URLs of slash commands.
type ttlCache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	ll    *list.List // front = most recently used
	items map[K]*list.Element
}

type ttlEntry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time
}

func newTTLCache[K comparable, V any](max int) *ttlCache[K, V] {
	return &ttlCache[K, V]{max: max, now: time.Now, ll: list.New(), items: make(map[K]*list.Element)}
}

// get returns the value under k if it is there and has not expired.
func (c *ttlCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*ttlEntry[K, V])
	if !c.now().Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, k)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// put stores v under k for ttl.
func (c *ttlCache[K, V]) put(k K, v V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v, ttl)
}

// add stores v under k for ttl unless k is already there and fresh; it
// reports whether it stored it (false: a duplicate).
func (c *ttlCache[K, V]) add(k K, v V, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok && c.now().Before(el.Value.(*ttlEntry[K, V]).expires) {
		return false
	}
	c.putLocked(k, v, ttl)
	return true
}

func (c *ttlCache[K, V]) putLocked(k K, v V, ttl time.Duration) {
	exp := c.now().Add(ttl)
	if el, ok := c.items[k]; ok {
		e := el.Value.(*ttlEntry[K, V])
		e.val, e.expires = v, exp
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&ttlEntry[K, V]{key: k, val: v, expires: exp})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*ttlEntry[K, V]).key)
	}
}

// len is the number of entries held, expired or not.
func (c *ttlCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// lanes serialises work per key (a channel) in the order it asked: a FIFO
// lock per key that holds no goroutine and no memory for idle keys.
type lanes struct {
	mu   sync.Mutex
	tail map[string]chan struct{}
}

// acquire waits until every earlier holder of key has released it, and
// returns the release function. If ctx ends first it returns ctx's error
// and the lane still passes on in order.
func (l *lanes) acquire(ctx context.Context, key string) (func(), error) {
	mine := make(chan struct{})
	l.mu.Lock()
	if l.tail == nil {
		l.tail = make(map[string]chan struct{})
	}
	prev := l.tail[key]
	l.tail[key] = mine
	l.mu.Unlock()

	var once sync.Once
	release := func() {
		once.Do(func() {
			l.mu.Lock()
			if l.tail[key] == mine {
				delete(l.tail, key)
			}
			l.mu.Unlock()
			close(mine)
		})
	}
	if prev == nil {
		return release, nil
	}
	select {
	case <-prev:
		return release, nil
	case <-ctx.Done():
		go func() { <-prev; release() }()
		return nil, ctx.Err()
	}
}
