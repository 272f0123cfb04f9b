//go:build unix

package local

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/internal/testenv"
)

// otherUID is a user id that is not this process's (nobody).
const otherUID = 65534

// chown gives path to another user, or skips the test when this process
// may not (it is not root).
func chown(t *testing.T, path string) {
	t.Helper()
	if os.Getuid() == otherUID {
		t.Skip("running as nobody")
	}
	if err := os.Lchown(path, otherUID, otherUID); err != nil {
		if testenv.InCI() && os.Getuid() == 0 {
			t.Fatal(err)
		}
		t.Skipf("cannot give a file to another user: %v", err)
	}
}

// A --registry_address directory others may write to, or that another user
// owns, is refused unless WithShared says it is shared on purpose (issue
// 15, item 6).
func TestUntrustedDirRefused(t *testing.T) {
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := New(WithDir(open)); err == nil || !strings.Contains(err.Error(), "writable by others") ||
		!strings.Contains(err.Error(), "--registry_shared_dir") {
		t.Errorf("a world-writable directory: %v", err)
	}
	if err := os.Chmod(open, 0o770); err != nil {
		t.Fatal(err)
	}
	if _, err := New(WithDir(open)); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("a group-writable directory: %v", err)
	}
	if _, err := New(WithDir(open), WithShared()); err != nil {
		t.Errorf("a shared directory, WithShared: %v", err)
	}

	theirs := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	chown(t, theirs)
	if _, err := New(WithDir(theirs)); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("another user's directory: %v", err)
	}
	// A symbolic link to it is judged by where it leads.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(theirs, link); err != nil {
		t.Fatal(err)
	}
	if _, err := New(WithDir(link)); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("a link to another user's directory: %v", err)
	}
}

// The lock file is never followed through a symbolic link: a link planted
// in the directory cannot make the registry create or truncate its target.
func TestLockLinkRefused(t *testing.T) {
	r := newTest(t)
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.Symlink(target, filepath.Join(r.Dir(), lockName)); err != nil {
		t.Fatal(err)
	}
	err := r.Register(context.Background(), svc("a", "n1"))
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Register with a linked lock: %v", err)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Error("the link's target was created")
	}
}

// Node files that other users own are ignored (with a warning), unless the
// directory is shared; so are links.
func TestForeignNodeFilesIgnored(t *testing.T) {
	var logs testenv.Buffer
	dir := t.TempDir()
	r, err := New(WithDir(dir), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Register(ctx, svc("go.micro.bot.mine", "n1")); err != nil {
		t.Fatal(err)
	}
	// Another user's node file (written as ours would be).
	rec := record{Format: format, Service: svc("go.micro.bot.theirs", "t1")}
	data, err := json.Marshal(&rec)
	if err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, fileName("go.micro.bot.theirs", "t1"))
	if err := os.WriteFile(theirs, data, 0o644); err != nil {
		t.Fatal(err)
	}
	chown(t, theirs)
	// A link to a file elsewhere, named as a node file.
	elsewhere := filepath.Join(t.TempDir(), "node.json")
	rec.Service = svc("go.micro.bot.linked", "l1")
	data, _ = json.Marshal(&rec)
	if err := os.WriteFile(elsewhere, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, fileName("go.micro.bot.linked", "l1"))); err != nil {
		t.Fatal(err)
	}

	list, err := r.ListServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "go.micro.bot.mine" {
		t.Errorf("services %v, want only go.micro.bot.mine", names(list))
	}
	if _, err := r.GetService(ctx, "go.micro.bot.theirs"); err == nil {
		t.Error("another user's node file was read")
	}
	if !strings.Contains(logs.String(), "owned by uid 65534") {
		t.Errorf("no warning about the foreign file:\n%s", logs.String())
	}
	// In a directory shared on purpose, other users' registrations count.
	shared, err := New(WithDir(dir), WithShared())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shared.GetService(ctx, "go.micro.bot.theirs"); err != nil {
		t.Errorf("shared: %v", err)
	}
}

func names(svcs []*registry.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, s.Name)
	}
	return out
}
