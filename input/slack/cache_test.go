package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestTTLCacheExpiresAndEvicts(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTTLCache[string, int](3)
	c.now = func() time.Time { return now }

	if !c.add("a", 1, time.Minute) || c.add("a", 2, time.Minute) {
		t.Fatal("add: first time true, repeat false")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := c.get("a"); ok {
		t.Fatal("entry did not expire")
	}
	if !c.add("a", 3, time.Minute) {
		t.Fatal("add after expiry refused")
	}
	for i := range 5 {
		c.put(fmt.Sprint(i), i, time.Hour)
	}
	if c.len() != 3 {
		t.Fatalf("len = %d, want the bound 3", c.len())
	}
	if _, ok := c.get("0"); ok {
		t.Fatal("least recently used entry was kept")
	}
	if v, ok := c.get("4"); !ok || v != 4 {
		t.Fatalf("get(4) = %v, %v", v, ok)
	}
}

func TestLanesKeepOrderPerKey(t *testing.T) {
	var l lanes
	first, err := l.acquire(context.Background(), "C1")
	if err != nil {
		t.Fatal(err)
	}
	// Other channels are not held up.
	other, err := l.acquire(context.Background(), "C2")
	if err != nil {
		t.Fatal(err)
	}
	other()

	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := 1; i <= 5; i++ {
		// Queue i only after i-1 is queued: the tail of the lane is theirs.
		prev := l.tailOf("C1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := l.acquire(context.Background(), "C1")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			release()
		}()
		for l.tailOf("C1") == prev {
			time.Sleep(time.Millisecond)
		}
	}
	// A waiter that gives up leaves the order intact.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.acquire(ctx, "C1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled context = %v", err)
	}
	first()
	wg.Wait()
	if fmt.Sprint(order) != "[1 2 3 4 5]" {
		t.Fatalf("order = %v", order)
	}
	// The waiter that gave up passes the lane on in the background.
	for deadline := time.Now().Add(10 * time.Second); l.tailOf("C1") != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("idle lane kept")
		}
	}
}

// tailOf is the last waiter's channel of a lane, for tests.
func (l *lanes) tailOf(key string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tail[key]
}
