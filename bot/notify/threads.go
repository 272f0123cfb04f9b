package notify

import (
	"container/list"
	"context"
	"sync"
)

// DefaultMaxThreads bounds the thread keys MemoryThreads remembers by
// default.
const DefaultMaxThreads = 10000

// Threads keeps the thread each thread key started, per room: the
// notifier posts a notification with a thread key in the thread Get
// returns, and keeps the thread a first post started with Put.
// Implementations are safe for concurrent use.
type Threads interface {
	// Get returns the thread of key in place, or "" if none is known.
	Get(ctx context.Context, place Place, key string) (string, error)
	// Put keeps thread as the thread of key in place.
	Put(ctx context.Context, place Place, key, thread string) error
}

// MemoryThreads returns Threads in this process's memory: at most max
// keys (max < 1: DefaultMaxThreads), the least recently used forgotten
// first (a notification whose key was forgotten starts a new thread).
func MemoryThreads(max int) Threads {
	if max < 1 {
		max = DefaultMaxThreads
	}
	return &memThreads{max: max, m: map[threadID]*list.Element{}}
}

type memThreads struct {
	mu  sync.Mutex
	max int
	m   map[threadID]*list.Element
	l   list.List // of *threadEntry, most recent first
}

type threadID struct {
	place Place
	key   string
}

type threadEntry struct {
	id     threadID
	thread string
}

func (t *memThreads) Get(_ context.Context, place Place, key string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[threadID{place, key}]
	if !ok {
		return "", nil
	}
	t.l.MoveToFront(e)
	return e.Value.(*threadEntry).thread, nil
}

func (t *memThreads) Put(_ context.Context, place Place, key, thread string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := threadID{place, key}
	if e, ok := t.m[id]; ok {
		e.Value.(*threadEntry).thread = thread
		t.l.MoveToFront(e)
		return nil
	}
	t.m[id] = t.l.PushFront(&threadEntry{id: id, thread: thread})
	for t.l.Len() > t.max {
		old := t.l.Back()
		delete(t.m, old.Value.(*threadEntry).id)
		t.l.Remove(old)
	}
	return nil
}
