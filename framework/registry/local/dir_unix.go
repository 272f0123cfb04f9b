//go:build unix

package local

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwned reports an error unless dir is a directory (not a symbolic
// link) owned by the user and, if private, closed to others.
func checkOwned(dir string, private bool) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (%d)", dir, st.Uid, os.Getuid())
	}
	if private && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %v, want no access for others", dir, fi.Mode().Perm()&fs.ModePerm)
	}
	return nil
}

// inode returns the inode number of a file.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// stamp identifies a version of the directory's list of names: creating,
// removing or renaming an entry sets the directory's modification time.
// ok is false if the system gives no inode number.
func stamp(fi fs.FileInfo) (s dirStamp, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirStamp{}, false
	}
	return dirStamp{ino: uint64(st.Ino), size: fi.Size(), mtime: fi.ModTime().UnixNano()}, true
}
