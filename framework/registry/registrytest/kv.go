package registrytest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
)

// RunKV runs the conformance suite of registry.KV, one parallel subtest per
// property. newKV returns two handles on one store (two Registries on the
// same directory or Consul agent, or the same handle twice for a store of
// one process): what one writes, the other reads. The suite may run against
// a shared store: each subtest keeps to keys under a prefix of its own and
// deletes them at the end.
//
// It pins down: keys and values are validated alike everywhere (errors wrap
// registry.ErrInvalidKV, nothing is written); Put, List (sorted, by
// prefix) and Delete round-trip, a missing key's Delete is no error; values
// handed in and out share no memory with the store; a blocking List (given
// an index) waits for a change under its prefix made through either handle,
// then returns the new pairs, and returns ctx's error when ctx ends first.
func RunKV(t *testing.T, newKV func(t *testing.T) (a, b registry.KV), opts ...Option) {
	o := Options{Wait: 20 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b registry.KV, prefix string, wait time.Duration)
	}{
		{"RoundTrip", testKVRoundTrip},
		{"Invalid", testKVInvalid},
		{"Copies", testKVCopies},
		{"Blocking", testKVBlocking},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := newKV(t)
			prefix := "registrytest/" + strings.ToLower(tc.name) + "-" + randomID() + "/"
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), o.Wait)
				defer cancel()
				pairs, _, err := a.List(ctx, prefix, 0)
				if err != nil {
					t.Errorf("cleanup: List: %v", err)
				}
				for _, p := range pairs {
					if err := a.Delete(ctx, p.Key); err != nil {
						t.Errorf("cleanup: Delete %q: %v", p.Key, err)
					}
				}
			})
			tc.fn(t, a, b, prefix, o.Wait)
		})
	}
}

func kvCtx(t *testing.T, wait time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// describePairs shows pairs as key=value, for messages.
func describePairs(pairs []registry.KVPair) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%q", p.Key, p.Value)
	}
	return "[" + b.String() + "]"
}

// eventuallyPairs polls List of kv until it shows want (for stores whose
// reads may lag their writes).
func eventuallyPairs(t *testing.T, kv registry.KV, prefix, want string, wait time.Duration) {
	t.Helper()
	ctx := kvCtx(t, wait)
	var got string
	for {
		pairs, _, err := kv.List(ctx, prefix, 0)
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		if got = describePairs(pairs); got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("List %q = %s, want %s", prefix, got, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func testKVRoundTrip(t *testing.T, a, b registry.KV, prefix string, wait time.Duration) {
	ctx := kvCtx(t, wait)
	for _, kv := range []struct{ k, v string }{{"b", "2"}, {"a/x", "1"}, {"a", "0"}, {"c@d:e f", "3"}, {"empty", ""}} {
		if err := a.Put(ctx, prefix+kv.k, []byte(kv.v)); err != nil {
			t.Fatalf("Put %q: %v", kv.k, err)
		}
	}
	p := prefix
	eventuallyPairs(t, b, prefix, fmt.Sprintf(`[%sa="0" %sa/x="1" %sb="2" %sc@d:e f="3" %sempty=""]`, p, p, p, p, p), wait)
	eventuallyPairs(t, b, prefix+"a", fmt.Sprintf(`[%sa="0" %sa/x="1"]`, p, p), wait)
	eventuallyPairs(t, b, prefix+"a/", fmt.Sprintf(`[%sa/x="1"]`, p), wait)
	eventuallyPairs(t, b, prefix+"zz", `[]`, wait)

	if err := b.Put(ctx, prefix+"b", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, prefix+"a/x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, prefix+"never-there"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	eventuallyPairs(t, a, prefix, fmt.Sprintf(`[%sa="0" %sb="two" %sc@d:e f="3" %sempty=""]`, p, p, p, p), wait)
}

func testKVInvalid(t *testing.T, a, _ registry.KV, prefix string, wait time.Duration) {
	ctx := kvCtx(t, wait)
	for _, key := range []string{"", "/" + prefix + "x", prefix + "a\nb", prefix + "\x00", prefix + "tab\t", prefix + strings.Repeat("k", registry.MaxKeyLen), prefix + "\xff"} {
		if err := a.Put(ctx, key, []byte("v")); !errors.Is(err, registry.ErrInvalidKV) {
			t.Errorf("Put %q: %v, want ErrInvalidKV", key, err)
		}
		if err := a.Delete(ctx, key); !errors.Is(err, registry.ErrInvalidKV) {
			t.Errorf("Delete %q: %v, want ErrInvalidKV", key, err)
		}
	}
	if _, _, err := a.List(ctx, "/x", 0); !errors.Is(err, registry.ErrInvalidKV) {
		t.Errorf("List of prefix /x: %v, want ErrInvalidKV", err)
	}
	if err := a.Put(ctx, prefix+"big", make([]byte, registry.MaxValueSize+1)); !errors.Is(err, registry.ErrInvalidKV) {
		t.Errorf("Put of %d bytes: %v, want ErrInvalidKV", registry.MaxValueSize+1, err)
	}
	if err := a.Put(ctx, prefix+"max", make([]byte, registry.MaxValueSize)); err != nil {
		t.Errorf("Put of %d bytes: %v", registry.MaxValueSize, err)
	}
	eventuallyPairs(t, a, prefix+"big", `[]`, wait)
}

func testKVCopies(t *testing.T, a, _ registry.KV, prefix string, wait time.Duration) {
	ctx := kvCtx(t, wait)
	v := []byte("value")
	if err := a.Put(ctx, prefix+"k", v); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	eventuallyPairs(t, a, prefix, fmt.Sprintf(`[%sk="value"]`, prefix), wait)
	pairs, _, err := a.List(ctx, prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	pairs[0].Value[0] = 'Y'
	eventuallyPairs(t, a, prefix, fmt.Sprintf(`[%sk="value"]`, prefix), wait)
}

func testKVBlocking(t *testing.T, a, b registry.KV, prefix string, wait time.Duration) {
	ctx := kvCtx(t, wait)
	if err := a.Put(ctx, prefix+"k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventuallyPairs(t, b, prefix, fmt.Sprintf(`[%sk="1"]`, prefix), wait)
	_, index, err := b.List(ctx, prefix, 0)
	if err != nil || index == 0 {
		t.Fatalf("List = index %d, %v; want a non-zero index", index, err)
	}
	type result struct {
		pairs []registry.KVPair
		index uint64
		err   error
	}
	// Through each handle in turn: a change made by the other wakes it.
	for i, h := range []struct{ watcher, writer registry.KV }{{b, a}, {a, b}} {
		_, index, err := h.watcher.List(ctx, prefix, 0)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan result, 1)
		go func() {
			pairs, idx, err := h.watcher.List(ctx, prefix, index)
			done <- result{pairs, idx, err}
		}()
		select {
		case r := <-done:
			t.Fatalf("round %d: List with the current index returned at once: %s %d %v", i, describePairs(r.pairs), r.index, r.err)
		case <-time.After(50 * time.Millisecond):
		}
		v := fmt.Sprintf("v%d", i+2)
		if err := h.writer.Put(ctx, prefix+"k", []byte(v)); err != nil {
			t.Fatal(err)
		}
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			t.Fatalf("round %d: the blocking List did not return after a change", i)
		}
		if r.err != nil || r.index == index || describePairs(r.pairs) != fmt.Sprintf(`[%sk=%q]`, prefix, v) {
			t.Errorf("round %d: blocking List = %s at %d (was %d), %v", i, describePairs(r.pairs), r.index, index, r.err)
		}
	}

	// The end of ctx ends a blocking List with ctx's error.
	_, index, err = a.List(ctx, prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := a.List(cctx, prefix, index)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("List after its ctx ended: %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("a blocking List outlived its context")
	}
}
