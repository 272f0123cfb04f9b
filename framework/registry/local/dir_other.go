//go:build !unix

package local

import (
	"fmt"
	"io/fs"
	"os"
)

// checkOwned reports an error unless dir is a directory. Ownership is not
// checked on this system (its temporary directory is per user).
func checkOwned(dir string, private bool) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// openNoFollow is 0: this system has no O_NOFOLLOW (its registry directory
// is per user).
const openNoFollow = 0

// isLoop reports false: see openNoFollow.
func isLoop(error) bool { return false }

// owner reports that this system does not tell.
func owner(fs.FileInfo) (int, bool) { return 0, false }

// checkTrusted reports nothing: ownership and modes are not checked on
// this system.
func checkTrusted(string) error { return nil }

// inode returns 0: the size and modification time identify a file version.
func inode(fs.FileInfo) uint64 { return 0 }

// stamp reports false: the directory's names are read every time.
func stamp(fs.FileInfo) (dirStamp, bool) { return dirStamp{}, false }
