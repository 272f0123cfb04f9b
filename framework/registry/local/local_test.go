package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/registrytest"
	"github.com/microbot/microbot/internal/testenv"
)

// newTest returns a Registry on a fresh directory.
func newTest(t *testing.T, opts ...Option) *Registry {
	t.Helper()
	r, err := New(append([]Option{WithDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, r)
	return r
}

// closeAtEnd closes r when the test ends, before its temporary directory
// is removed (cleanups run last first): a collection of expired files
// still under way would otherwise recreate the directory, or make its
// removal fail with "directory not empty" (the once-in-a-while failure of
// TestConformance/TTLExpiry on a loaded machine).
func closeAtEnd(t testing.TB, r *Registry) {
	t.Cleanup(func() { _ = r.Close() })
}

func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry { return newTest(t) })
}

// The polling fallback alone gives the same results, with every change made
// by another Registry (as another process would), which pokes no watcher.
func TestConformancePolling(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		dir := t.TempDir()
		w, err := New(WithDir(dir), WithPolling(), WithPollInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, w)
		wr, err := New(WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, wr)
		return split{Registry: w, writer: wr}
	})
}

// split writes through one Registry and reads through another.
type split struct {
	*Registry
	writer *Registry
}

func (s split) Register(ctx context.Context, svc *registry.Service, opts ...registry.RegisterOption) error {
	return s.writer.Register(ctx, svc, opts...)
}

func (s split) Deregister(ctx context.Context, svc *registry.Service) error {
	return s.writer.Deregister(ctx, svc)
}

func TestPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	dir := filepath.Join(t.TempDir(), "reg")
	r, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(context.Background(), svc("a", "n1")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
}

func svc(name string, ids ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: "1"}
	for _, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{ID: id, Address: "127.0.0.1:1"})
	}
	return s
}

func TestAnyName(t *testing.T) {
	r := newTest(t)
	ctx := context.Background()
	long := strings.Repeat("x/", 300)
	tests := []struct{ name, id string }{
		{"go.micro.srv.greeter", "go.micro.srv.greeter-1"},
		{"a/b", "../../etc/passwd"},
		{"..", "."},
		{".hidden", ".tmp-x"},
		{"UPPER", "upper"},
		{"upper", "UPPER"},
		{"a@b", "c@d"},
		{"sp ace%20", "tab\tnl\n"},
		{"名前", "ノード"},
		{"nul\x00byte", "x"},
		{long, long},
		{long + "y", "z"},
	}
	for _, tc := range tests {
		if err := r.Register(ctx, svc(tc.name, tc.id)); err != nil {
			t.Fatalf("Register(%q, %q): %v", tc.name, tc.id, err)
		}
	}
	for _, tc := range tests {
		got, err := r.GetService(ctx, tc.name)
		if err != nil || len(got) != 1 || got[0].Name != tc.name || len(got[0].Nodes) != 1 || got[0].Nodes[0].ID != tc.id {
			t.Errorf("GetService(%q) = %s, %v; want node %q", tc.name, describe(got), err, tc.id)
		}
	}
	entries, err := os.ReadDir(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); strings.ContainsAny(n, `/\`) || len(n) > 255 {
			t.Errorf("bad file name %q", n)
		}
	}
	for _, tc := range tests {
		if err := r.Deregister(ctx, svc(tc.name, tc.id)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetService(ctx, tc.name); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("after Deregister GetService(%q) = %v", tc.name, err)
		}
	}
	if list, err := r.ListServices(ctx); err != nil || len(list) != 0 {
		t.Fatalf("ListServices = %s, %v; want nothing", describe(list), err)
	}
}

func describe(ss []*registry.Service) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.Name + "@" + s.Version + "[")
		for _, n := range s.Nodes {
			b.WriteString(n.ID + " ")
		}
		b.WriteString("] ")
	}
	return b.String()
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBadFiles(t *testing.T) {
	var logs syncBuffer
	r := newTest(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := context.Background()
	if err := r.Register(ctx, svc("good", "n1")); err != nil {
		t.Fatal(err)
	}
	w, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	bad := map[string]string{
		fileName("good", "truncated"): `{"format":1,"service":{"name":"good","nodes":[{"id":"trunc`,
		fileName("good", "garbage"):   "\x00\x01garbage",
		fileName("good", "empty"):     "",
		fileName("good", "misnamed"):  `{"format":1,"service":{"name":"good","version":"1","nodes":[{"id":"other","address":"x:1"}]}}`,
		fileName("good", "nonodes"):   `{"format":1,"service":{"name":"good"}}`,
		fileName("good", "newer"):     `{"format":99,"service":{"name":"good","nodes":[{"id":"newer","address":"x:1"}]}}`,
		fileName("good", "noformat"):  `{"service":{"name":"good","nodes":[{"id":"noformat","address":"x:1"}]}}`,
		fileName("good", "badmeta"):   `{"format":1,"service":{"name":"good","metadata":5,"nodes":[{"id":"badmeta","address":"x:1"}]}}`,
		fileName("good", "badeps"):    `{"format":1,"service":{"name":"good","endpoints":{"name":"E"},"nodes":[{"id":"badeps","address":"x:1"}]}}`,
		fileName("good", "badnode"):   `{"format":1,"service":{"name":"good","nodes":[{"id":"badnode","address":"x:1","metadata":[1]}]}}`,
		fileName("good", "badsvc"):    `{"format":1,"service":"good"}`,
		fileName("good", "newerodd"):  `{"format":2,"service":"a format this program cannot know"}`,
		"README":                      "not ours",
	}
	for name, data := range bad {
		// Whole at once, as a copy would make them, so each is warned about once.
		tmp := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(r.Dir(), name)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.GetService(ctx, "good")
	if err != nil || len(got) != 1 || len(got[0].Nodes) != 1 || got[0].Nodes[0].ID != "n1" {
		t.Fatalf("GetService = %s, %v; want only node n1", describe(got), err)
	}
	if list, err := r.ListServices(ctx); err != nil || len(list) != 1 {
		t.Fatalf("ListServices = %s, %v", describe(list), err)
	}
	for name := range bad {
		if name != "README" && !strings.Contains(logs.String(), name) {
			t.Errorf("no warning about %s in the log:\n%s", name, logs.String())
		}
	}
	if n := strings.Count(logs.String(), fileName("good", "garbage")); n != 1 {
		t.Errorf("warned %d times about the same bad file, want once", n)
	}
	// The watcher is not disturbed: the next event is the real change.
	if err := r.Register(ctx, svc("other", "n2")); err != nil {
		t.Fatal(err)
	}
	res, err := w.Next()
	if err != nil || res.Action != registry.Create || res.Service.Name != "other" {
		t.Fatalf("Next = %+v, %v; want create other", res, err)
	}

	// Bad files older than the grace period are removed; files of a newer
	// format and files not ours are left alone.
	old := time.Now().Add(-2 * grace)
	for name := range bad {
		if err := os.Chtimes(filepath.Join(r.Dir(), name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 20*time.Second, "bad files removed", func() bool {
		_, _ = r.GetService(ctx, "good")
		for name := range bad {
			_, err := os.Stat(filepath.Join(r.Dir(), name))
			keep := name == "README" || name == fileName("good", "newer") || name == fileName("good", "newerodd")
			if keep != (err == nil) {
				return false
			}
		}
		return true
	})
}

func TestExpiredFilesRemoved(t *testing.T) {
	r := newTest(t)
	ctx := context.Background()
	if err := r.Register(ctx, svc("short", "n1"), registry.WithTTL(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx, svc("long", "n2")); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a process killed while writing.
	tmp := filepath.Join(r.Dir(), tmpPrefix+"left")
	if err := os.WriteFile(tmp, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * grace)
	_ = os.Chtimes(tmp, old, old)

	expired := filepath.Join(r.Dir(), fileName("short", "n1"))
	testenv.Eventually(t, 20*time.Second, "expired and left-over files removed", func() bool {
		_, _ = r.ListServices(ctx) // any reader collects
		_, err1 := os.Stat(expired)
		_, err2 := os.Stat(tmp)
		return errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist)
	})
	if _, err := r.GetService(ctx, "long"); err != nil {
		t.Fatalf("the live node went too: %v", err)
	}
}

// A refresh that lands after a reader saw the node expired is kept: the
// collector looks again under the lock.
func TestCollectorKeepsRefreshed(t *testing.T) {
	r := newTest(t)
	ctx := context.Background()
	if err := r.Register(ctx, svc("a", "n1"), registry.WithTTL(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	name := fileName("a", "n1")
	if !r.isGarbage(name, time.Now()) {
		t.Fatal("expired file not seen as garbage")
	}
	if err := r.Register(ctx, svc("a", "n1"), registry.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r.collect([]string{name}) // with the stale verdict
	testenv.Eventually(t, 20*time.Second, "collection done", func() bool { return !r.gcBusy.Load() })
	if _, err := r.GetService(ctx, "a"); err != nil {
		t.Fatalf("refreshed node removed: %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("XDG_RUNTIME_DIR is a unix thing")
	}
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	if d, err := DefaultDir(); err != nil || d != filepath.Join(xdg, "microbot", "registry") {
		t.Errorf("with XDG_RUNTIME_DIR: %q, %v", d, err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "relative/dir")
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", t.TempDir())
	want := filepath.Join(cache, "microbot", "registry")
	if runtime.GOOS == "darwin" {
		want = filepath.Join(os.Getenv("HOME"), "Library", "Caches", "microbot", "registry")
	}
	if d, err := DefaultDir(); err != nil || d != want {
		t.Errorf("without XDG_RUNTIME_DIR: %q, %v; want %q", d, err, want)
	}
}

func TestTempFallbackRefusesForeignDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	d, err := DefaultDir()
	if err != nil || !strings.HasPrefix(d, tmp) {
		t.Fatalf("DefaultDir = %q, %v; want one under %s", d, err, tmp)
	}
	top := filepath.Dir(d)
	if err := os.Chmod(top, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := DefaultDir(); err == nil || !strings.Contains(err.Error(), "no access for others") {
		t.Fatalf("DefaultDir with an open %s: %v, want a refusal", top, err)
	}
}

func TestInvalidTTL(t *testing.T) {
	r := newTest(t)
	err := r.Register(context.Background(), svc("a", "n1"), registry.WithTTL(-time.Second))
	if !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("negative TTL: %v", err)
	}
}

// Watchers share one watch of the directory, which stops with the last.
func TestHubStops(t *testing.T) {
	r := newTest(t)
	ctx := context.Background()
	w1, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.hubMu.Lock()
	h := r.hub
	r.hubMu.Unlock()
	w1.Stop()
	w2.Stop()
	select {
	case <-h.stop:
	case <-time.After(20 * time.Second):
		t.Fatal("the directory watch did not stop with its last watcher")
	}
	r.hubMu.Lock()
	defer r.hubMu.Unlock()
	if r.hub != nil {
		t.Fatal("a stopped hub is still in use")
	}
}

// The directory lock excludes other Registries (other processes): a writer
// waits while another holds it, and gives up after the timeout.
func TestLockExcludes(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "windows" && !strings.HasSuffix(runtime.GOOS, "bsd") {
		t.Skip("no cross-process lock on " + runtime.GOOS)
	}
	dir := t.TempDir()
	a, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(WithDir(dir), WithLockTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- a.locked(context.Background(), func() error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	err = b.Register(context.Background(), svc("x", "n1"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "held by another process") {
		t.Fatalf("Register while another holds the lock = %v, want a timeout", err)
	}
	if _, err := b.GetService(context.Background(), "x"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a Register that timed out changed the registry: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := b.Register(context.Background(), svc("x", "n1")); err != nil {
		t.Fatalf("Register once the lock is free: %v", err)
	}
}

// A kept list of names is trusted only while the directory's stamp is
// unchanged, and only once the directory last changed more than a tick of
// its file system's clock before the list was read.
func TestListingTrusted(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	st := func(mtime time.Time) dirStamp { return dirStamp{ino: 7, size: 4096, mtime: mtime.UnixNano()} }
	tests := []struct {
		name  string
		mtime time.Time
		now   dirStamp // zero: st(mtime)
		want  bool
	}{
		{"changed long before", at.Add(-time.Minute + time.Millisecond), dirStamp{}, true},
		{"changed just before", at.Add(-racy / 2), dirStamp{}, false},
		{"whole seconds, 1 s before", at.Add(-500 * time.Millisecond).Truncate(time.Second), dirStamp{}, false},
		{"whole seconds, long before", at.Add(-time.Minute).Truncate(time.Second), dirStamp{}, true},
		{"changed since", at.Add(-time.Minute + time.Millisecond), st(at.Add(time.Millisecond)), false},
		{"replaced", at.Add(-time.Minute + time.Millisecond), dirStamp{ino: 8, size: 4096, mtime: at.Add(-time.Minute + time.Millisecond).UnixNano()}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &listing{stamp: st(tc.mtime), at: at}
			now := tc.now
			if now == (dirStamp{}) {
				now = st(tc.mtime)
			}
			if got := l.trusted(now); got != tc.want {
				t.Errorf("trusted = %v, want %v", got, tc.want)
			}
		})
	}
	var none *listing
	if none.trusted(st(at.Add(-time.Hour))) {
		t.Error("no list is trusted")
	}
}

// The list of names is read again whenever the directory changes: a file
// added or removed by another process is seen by the next GetService,
// whether the change comes at once or after the list has been kept a while.
func TestListingFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	r := newTest(t, WithDir(dir))
	other, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 40 {
		if i%10 == 9 {
			time.Sleep(2 * racy) // the kept list is trusted from now on
		}
		s := svc("go.micro.srv.listing", fmt.Sprintf("n%d", i))
		if err := other.Register(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, err := r.GetService(ctx, s.Name)
		if err != nil || len(got) != 1 || len(got[0].Nodes) != 1 || got[0].Nodes[0].ID != s.Nodes[0].ID {
			t.Fatalf("round %d: after Register: %s, %v", i, describe(got), err)
		}
		if i%10 == 4 {
			time.Sleep(2 * racy)
		}
		if err := other.Deregister(ctx, s); err != nil {
			t.Fatal(err)
		}
		if got, err := r.GetService(ctx, s.Name); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("round %d: after Deregister: %s, %v", i, describe(got), err)
		}
	}
}

// Services registered with the same endpoints and metadata share one
// decoded copy of them in the cache; a refresh without change keeps the
// cached service, a change replaces it; what callers get stays theirs.
func TestSharedParts(t *testing.T) {
	r := newTest(t)
	ctx := context.Background()
	full := func(name, id, nodeMeta string) *registry.Service {
		return &registry.Service{
			Name: name, Version: "1", Metadata: map[string]string{"team": "bots"},
			Endpoints: []*registry.Endpoint{{Name: "Command.Exec", Request: &registry.Value{Name: "ExecRequest", Type: "ExecRequest",
				Values: []*registry.Value{{Name: "args", Type: "[]string"}}}, Metadata: map[string]string{"stream": "false"}}},
			Nodes: []*registry.Node{{ID: id, Address: "127.0.0.1:1", Metadata: map[string]string{"transport": "http", "n": nodeMeta}}},
		}
	}
	a, b := full("a", "a1", "x"), full("b", "b1", "x")
	for _, s := range []*registry.Service{a, b} {
		if err := r.Register(ctx, s, registry.WithTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(s *registry.Service) *cached {
		t.Helper()
		if _, err := r.GetService(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.cache[fileName(s.Name, s.Nodes[0].ID)]
	}
	ca, cb := entry(a), entry(b)
	if ca.svc == cb.svc || &ca.svc.Endpoints[0] != &cb.svc.Endpoints[0] {
		t.Errorf("the endpoints of a and b are not shared")
	}
	if reflect.ValueOf(ca.svc.Metadata).UnsafePointer() != reflect.ValueOf(cb.svc.Metadata).UnsafePointer() ||
		reflect.ValueOf(ca.svc.Nodes[0].Metadata).UnsafePointer() != reflect.ValueOf(cb.svc.Nodes[0].Metadata).UnsafePointer() {
		t.Errorf("the metadata of a and b are not shared")
	}

	// A refresh writes a new file with a new expiry; the service is kept.
	if err := r.Register(ctx, a, registry.WithTTL(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c := entry(a); c == ca || c.svc != ca.svc || !c.expires.After(ca.expires) {
		t.Errorf("after a refresh: entry %p svc %p expires %v; before: %p %p %v", c, c.svc, c.expires, ca, ca.svc, ca.expires)
	}
	// A change makes a new service, still sharing what did not change.
	a.Nodes[0].Metadata["n"] = "y"
	if err := r.Register(ctx, a, registry.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := entry(a)
	if c.svc == ca.svc || c.svc.Nodes[0].Metadata["n"] != "y" || &c.svc.Endpoints[0] != &cb.svc.Endpoints[0] {
		t.Errorf("after a change: node metadata %v, endpoints shared %v", c.svc.Nodes[0].Metadata, &c.svc.Endpoints[0] == &cb.svc.Endpoints[0])
	}

	// What GetService returns for a is a's to change: b is intact.
	got, err := r.GetService(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	got[0].Metadata["team"] = "changed"
	got[0].Endpoints[0].Request.Values[0].Name = "changed"
	got[0].Nodes[0].Metadata["transport"] = "changed"
	gb, err := r.GetService(ctx, "b")
	if err != nil || !registry.Equal(gb[0], b) {
		t.Fatalf("b after changing what GetService returned for a: %+v, %v", gb, err)
	}
}

// The shared parts that no file holds any more are forgotten: a node that
// registers with new metadata every time does not grow the cache.
func TestSharedPartsSwept(t *testing.T) {
	r := newTest(t)
	ctx := context.Background()
	s := svc("churn", "n1")
	for i := range 1000 {
		s.Nodes[0].Metadata = map[string]string{"i": fmt.Sprint(i)}
		if err := r.Register(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, err := r.GetService(ctx, "churn")
		if err != nil || got[0].Nodes[0].Metadata["i"] != fmt.Sprint(i) {
			t.Fatalf("round %d: %s, %v", i, describe(got), err)
		}
	}
	r.mu.Lock()
	n := len(r.shared.maps) + len(r.shared.endpoints)
	r.mu.Unlock()
	if n > 2*1+64+1 {
		t.Errorf("%d shared parts kept for 1 file", n)
	}
}

// A snapshot of unchanged parts is the old one; a changed part makes only
// its version new; diff tells exactly what changed.
func TestSnapshot(t *testing.T) {
	part := func(name, version, id string) *registry.Service {
		return &registry.Service{Name: name, Version: version, Nodes: []*registry.Node{{ID: id, Address: "127.0.0.1:1"}}}
	}
	a1, a2, a3 := part("a", "1", "a1"), part("a", "2", "a2"), part("a", "1", "a3")
	b1 := part("b", "1", "b1")
	s0 := newSnapshot([]*registry.Service{a1, a2, a3, b1}, nil)
	if len(s0) != 3 || len(s0[[2]string{"a", "1"}].svc.Nodes) != 2 {
		t.Fatalf("snapshot of a@1 a@2 a@1 b@1: %d versions, a@1 = %+v", len(s0), s0[[2]string{"a", "1"}])
	}
	c1, c2 := part("c", "1", "c1"), part("c", "1", "c2")
	scanned := []*registry.Service{c1, c2}
	sc := newSnapshot(scanned, nil)
	scanned[0] = nil // the scan's slice is not kept
	if v := sc[[2]string{"c", "1"}]; !v.of([]*registry.Service{c1, c2}) {
		t.Errorf("c@1 is made of %v, want c1 c2", v.parts)
	}
	s1 := newSnapshot([]*registry.Service{a1, a2, a3, b1}, s0)
	if reflect.ValueOf(s1).UnsafePointer() != reflect.ValueOf(s0).UnsafePointer() {
		t.Errorf("unchanged parts made a new snapshot")
	}
	if rs := diff(s0, s1); len(rs) != 0 {
		t.Errorf("diff of unchanged snapshots: %v", rs)
	}
	b1x := part("b", "1", "b1")
	b1x.Nodes[0].Address = "127.0.0.1:2"
	s2 := newSnapshot([]*registry.Service{a1, a2, b1x}, s1)
	if s2[[2]string{"a", "2"}] != s1[[2]string{"a", "2"}] {
		t.Errorf("a@2 did not change but is new")
	}
	var got []string
	for _, r := range diff(s1, s2) {
		got = append(got, fmt.Sprintf("%s %s@%s %d", r.Action, r.Service.Name, r.Service.Version, len(r.Service.Nodes)))
	}
	if want := []string{"update a@1 1", "update b@1 1"}; !slices.Equal(got, want) {
		t.Errorf("diff = %q, want %q", got, want)
	}
	got = nil
	for _, r := range diff(s2, newSnapshot(nil, s2)) {
		got = append(got, r.Action+" "+r.Service.Name+"@"+r.Service.Version)
	}
	if want := []string{"delete a@1", "delete a@2", "delete b@1"}; !slices.Equal(got, want) {
		t.Errorf("diff to empty = %q, want %q", got, want)
	}
}

// Changes made by another process (here another Registry, which pokes no
// watcher) reach a watcher through change notification alone, exactly,
// file by file: with no poll to fall back on.
func TestWatchNotified(t *testing.T) {
	if w, err := fsnotify.NewWatcher(); err != nil {
		t.Skipf("no change notification on this system: %v", err)
	} else {
		w.Close()
	}
	dir := t.TempDir()
	r := newTest(t, WithDir(dir), WithPollInterval(time.Hour))
	other, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	results := make(chan *registry.Result, 100)
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				close(results)
				return
			}
			results <- res
		}
	}()
	expect := func(action string, ids ...string) {
		t.Helper()
		select {
		case res := <-results:
			var got []string
			for _, n := range res.Service.Nodes {
				got = append(got, n.ID)
			}
			if res.Action != action || !slices.Equal(got, ids) {
				t.Fatalf("event %s %v, want %s %v", res.Action, got, action, ids)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event, want %s %v", action, ids)
		}
	}
	do := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	n1 := svc("go.micro.srv.notified", "n1")
	n2 := svc("go.micro.srv.notified", "n2")
	do(other.Register(ctx, n1))
	expect(registry.Create, "n1")
	do(other.Register(ctx, n2))
	expect(registry.Update, "n1", "n2")
	do(other.Register(ctx, n1)) // a refresh: no event
	n1.Nodes[0].Metadata = map[string]string{"changed": "yes"}
	do(other.Register(ctx, n1))
	expect(registry.Update, "n1", "n2")
	do(other.Deregister(ctx, n1))
	expect(registry.Update, "n2")
	do(other.Deregister(ctx, n2))
	expect(registry.Delete, "n2")
	do(other.Register(ctx, n1, registry.WithTTL(300*time.Millisecond)))
	expect(registry.Create, "n1")
	expect(registry.Delete, "n1") // expired
	select {
	case res := <-results:
		t.Fatalf("unexpected event %s %+v", res.Action, res.Service)
	case <-time.After(200 * time.Millisecond):
	}
}

// A burst of changes by another process gives events that, applied in
// order, lead exactly to the registry's state: a Create only for a service
// not up, an Update or Delete only for one that is.
func TestWatchBurst(t *testing.T) {
	dir := t.TempDir()
	r := newTest(t, WithDir(dir), WithPollInterval(time.Hour))
	other, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const n = 200
	up := map[string]int{} // service -> nodes, as the events tell
	settle := func(nodes int) {
		t.Helper()
		deadline := time.AfterFunc(20*time.Second, w.Stop)
		defer deadline.Stop()
		for {
			done := true
			for i := range n {
				if up[fmt.Sprintf("go.micro.srv.burst%03d", i)] != nodes {
					done = false
					break
				}
			}
			if done {
				return
			}
			res, err := w.Next()
			if err != nil {
				t.Fatalf("events so far: %v; %v", up, err)
			}
			name := res.Service.Name
			switch _, ok := up[name]; {
			case res.Action == registry.Create && !ok:
				up[name] = len(res.Service.Nodes)
			case res.Action == registry.Update && ok:
				up[name] = len(res.Service.Nodes)
			case res.Action == registry.Delete && ok:
				delete(up, name)
			default:
				t.Fatalf("%s %s while it is up: %v", res.Action, name, ok)
			}
		}
	}
	for i := range n {
		if err := other.Register(ctx, svc(fmt.Sprintf("go.micro.srv.burst%03d", i), "a", "b")); err != nil {
			t.Fatal(err)
		}
	}
	settle(2)
	for i := range n {
		if err := other.Deregister(ctx, svc(fmt.Sprintf("go.micro.srv.burst%03d", i), "a", "b")); err != nil {
			t.Fatal(err)
		}
	}
	settle(0)
	time.AfterFunc(300*time.Millisecond, w.Stop)
	if res, err := w.Next(); err == nil {
		t.Errorf("event after the state was reached: %s %s", res.Action, res.Service.Name)
	}
}

// Two Registries on one directory, as two processes: the second sees the
// first's writes by polling.
func TestKVConformance(t *testing.T) {
	registrytest.RunKV(t, func(t *testing.T) (registry.KV, registry.KV) {
		dir := t.TempDir()
		var kvs []registry.KV
		for range 2 {
			r, err := New(WithDir(dir), WithPollInterval(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			kv, ok := registry.KVOf(r)
			if !ok {
				t.Fatal("the local registry has no KV store")
			}
			kvs = append(kvs, kv)
		}
		return kvs[0], kvs[1]
	})
}

// The KV store's files stay out of the registry's way: services and watches
// see none of them.
func TestKVBesideTheRegistry(t *testing.T) {
	r := newTest(t)
	ctx := context.Background()
	if err := r.KV().Put(ctx, "microbot/watches/x", []byte(`{"topic": "x"}`)); err != nil {
		t.Fatal(err)
	}
	svcs, err := r.ListServices(ctx)
	if err != nil || len(svcs) != 0 {
		t.Fatalf("ListServices = %v, %v; want nothing", svcs, err)
	}
	if fi, err := os.Stat(filepath.Join(r.Dir(), ".kv")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the KV directory: %v, %v; want a directory of mode 0700 in the registry's", fi, err)
	}
}

// A collection of expired files that runs late (a loaded machine) never
// makes the directory again once it is gone, and Close waits for one under
// way and lets none start: the conformance suite's TTL tests end while one
// may be starting, and their directory is removed right after (issue 15,
// item 12).
func TestCollectorAfterTheEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reg")
	r, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}, 8), make(chan struct{})
	r.collecting = func() {
		started <- struct{}{}
		<-release
	}
	ctx := context.Background()
	expired := func() {
		t.Helper()
		if err := r.Register(ctx, svc("a", "n1"), registry.WithTTL(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 20*time.Second, "a collection started", func() bool {
			_, _ = r.GetService(ctx, "a") // comes across the expired file
			select {
			case <-started:
				return true
			default:
				return false
			}
		})
	}

	// The directory goes while a collection waits to run.
	expired()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	release <- struct{}{}
	testenv.Eventually(t, 20*time.Second, "the collection done", func() bool { return !r.gcBusy.Load() })
	if _, err := os.Lstat(dir); err == nil {
		t.Fatal("the collection made the removed directory again")
	}

	// Close waits for a collection under way; none starts after it.
	expired()
	closed := make(chan struct{})
	go func() { _ = r.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close did not wait for the collection under way")
	case release <- struct{}{}:
	}
	<-closed
	// None starts after Close, though reads come across an expired file.
	if err := r.Register(ctx, svc("a", "n1"), registry.WithTTL(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the node expired", func() bool {
		r.gcLast.Store(0) // no wait between collections
		_, err := r.GetService(ctx, "a")
		if r.gcBusy.Load() {
			t.Fatal("a collection started after Close")
		}
		return errors.Is(err, registry.ErrNotFound)
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}
