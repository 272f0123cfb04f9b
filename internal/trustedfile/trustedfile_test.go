//go:build unix

package trustedfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microbot/microbot/internal/testenv"
	"github.com/microbot/microbot/internal/trustedfile"
)

const why = "whoever may change it decides"

// TestRead: a file of this user's is read unless everyone may write it or
// it is too large; a link is followed to the file it names; another user's
// file is refused.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		mode    os.FileMode
		size    int
		want    string // in the error; "" = read
		viaLink bool
	}{
		{name: "private", mode: 0o600, size: 10},
		{name: "readable by all", mode: 0o644, size: 10},
		{name: "group-writable", mode: 0o660, size: 10},
		{name: "at the limit", mode: 0o600, size: 100},
		{name: "through a link", mode: 0o644, size: 10, viaLink: true},
		{name: "writable by all", mode: 0o666, size: 10, want: "is writable by others (mode -rw-rw-rw-): " + why + "; chmod o-w it"},
		{name: "writable by others only", mode: 0o602, size: 10, want: "is writable by others"},
		{name: "link to a file writable by all", mode: 0o646, size: 10, viaLink: true, want: "is writable by others"},
		{name: "too large", mode: 0o600, size: 101, want: "is larger than 100 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			content := strings.Repeat("x", tc.size)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.viaLink {
				link := path + ".link"
				if err := os.Symlink(path, link); err != nil {
					t.Fatal(err)
				}
				path = link
			}
			data, err := trustedfile.Read(path, 100, why)
			if tc.want == "" {
				if err != nil || string(data) != content {
					t.Fatalf("Read = %d bytes, %v; want the file", len(data), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Read: %v; want an error naming %s with %q", err, path, tc.want)
			}
		})
	}
	if _, err := trustedfile.Read(filepath.Join(dir, "missing"), 100, why); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}

	path := filepath.Join(dir, "theirs")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		if testenv.InCI() && os.Getuid() == 0 {
			t.Fatal(err)
		}
		t.Skipf("cannot give a file to another user: %v", err)
	}
	if _, err := trustedfile.Read(path, 100, why); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534, neither this user") || !strings.HasSuffix(err.Error(), why) {
		t.Errorf("another user's file: %v", err)
	}
}
