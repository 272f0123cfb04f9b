//go:build unix

package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/internal/testenv"
)

// The audit log is never written through a symbolic link, nor to a file
// another user owns or may write (issue 15, item 6's class: a path trusted
// without checks).
func TestOpenRefusesUntrustedFiles(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	link := filepath.Join(dir, "audit.log")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Open(link, nil, nil); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Open of a link: %v", err)
	}
	if _, err := os.Lstat(victim); err == nil {
		t.Error("the link's target was created")
	}

	open := filepath.Join(dir, "open.log")
	if err := os.WriteFile(open, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Open(open, nil, nil); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("Open of a world-writable file: %v", err)
	}

	theirs := filepath.Join(dir, "theirs.log")
	if err := os.WriteFile(theirs, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		if testenv.InCI() && os.Getuid() == 0 {
			t.Fatal(err)
		}
		t.Skipf("cannot give a file to another user: %v", err)
	}
	if _, err := audit.Open(theirs, nil, nil); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("Open of another user's file: %v", err)
	}
}
