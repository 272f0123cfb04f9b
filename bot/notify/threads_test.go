package notify

import (
	"context"
	"strings"
	"testing"
)

// TestMemoryThreads: keys per room, bounded, the least recently used
// forgotten first.
func TestMemoryThreads(t *testing.T) {
	ctx := context.Background()
	th := MemoryThreads(3)
	a, b := Place{"slack", "C1"}, Place{"slack", "C2"}
	put := func(p Place, key, thread string) {
		if err := th.Put(ctx, p, key, thread); err != nil {
			t.Fatal(err)
		}
	}
	get := func(p Place, key string) string {
		s, err := th.Get(ctx, p, key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	put(a, "k", "1.0")
	put(b, "k", "2.0")
	put(a, "j", "3.0")
	if got := strings.Join([]string{get(a, "k"), get(b, "k"), get(a, "j"), get(b, "j")}, " "); got != "1.0 2.0 3.0 " {
		t.Errorf("threads %q", got)
	}
	_ = get(a, "k") // used: b's k is now the least recent
	put(a, "new", "4.0")
	if get(b, "k") != "" || get(a, "k") != "1.0" || get(a, "new") != "4.0" {
		t.Errorf("after a fourth key: b/k %q a/k %q a/new %q", get(b, "k"), get(a, "k"), get(a, "new"))
	}
}
