package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent use: a child process's
// output written by one goroutine and read by the test in another.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// builds caches the binaries built by this test process: building a main
// package and linking it with -race takes seconds, and many tests start the
// same program. It is test-only state, emptied by [Main].
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*built
}

type built struct {
	once sync.Once
	name string // unique in the directory
	path string
	err  error
}

// Build compiles the main package pkg (an import path, e.g.
// "github.com/microbot/microbot/examples/greeter") once per test process and
// returns the binary's path. When the tests run with -race, so does the
// binary, so a race in a child process fails the test too. Packages that use
// it call [Main] from TestMain to remove the binaries afterwards.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*built{}
	}
	b := builds.bins[pkg]
	if b == nil {
		b = &built{name: fmt.Sprintf("%d-%s", len(builds.bins), path.Base(pkg))}
		builds.bins[pkg] = b
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "microbot-testbin-")
		if err != nil {
			builds.mu.Unlock()
			tb.Fatalf("testenv: temp dir for binaries: %v", err)
		}
		builds.dir = dir
	}
	dir := builds.dir
	builds.mu.Unlock()

	b.once.Do(func() {
		b.path = filepath.Join(dir, b.name)
		args := []string{"build", "-o", b.path}
		if RaceEnabled {
			args = append(args, "-race")
		}
		args = append(args, pkg)
		for try := 0; try < 2; try++ { // once more: the shared build cache can hiccup under load
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
			cancel()
			if b.err = err; err == nil {
				return
			}
			b.err = fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// Main runs the tests of a package that uses [Build], removes the binaries
// it built, runs cleanup, and exits with the tests' status. Call it from
// TestMain.
func Main(m *testing.M, cleanup ...func()) {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	for _, f := range cleanup {
		f()
	}
	os.Exit(code)
}
