package notify

import (
	"container/list"
	"sync"
)

// DefaultMaxThreads bounds the thread keys remembered.
const DefaultMaxThreads = 10000

// threads remembers the thread each thread key started, per room: at most
// max keys, the least recently used forgotten first (a notification with a
// forgotten key starts a new thread).
type threads struct {
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

func newThreads(max int) *threads {
	if max < 1 {
		max = DefaultMaxThreads
	}
	return &threads{max: max, m: map[threadID]*list.Element{}}
}

// get returns the thread of key in place, or "".
func (t *threads) get(place Place, key string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[threadID{place, key}]
	if !ok {
		return ""
	}
	t.l.MoveToFront(e)
	return e.Value.(*threadEntry).thread
}

// put remembers thread as the thread of key in place.
func (t *threads) put(place Place, key, thread string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := threadID{place, key}
	if e, ok := t.m[id]; ok {
		e.Value.(*threadEntry).thread = thread
		t.l.MoveToFront(e)
		return
	}
	t.m[id] = t.l.PushFront(&threadEntry{id: id, thread: thread})
	for t.l.Len() > t.max {
		old := t.l.Back()
		delete(t.m, old.Value.(*threadEntry).id)
		t.l.Remove(old)
	}
}

// len returns how many keys are remembered.
func (t *threads) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.l.Len()
}
