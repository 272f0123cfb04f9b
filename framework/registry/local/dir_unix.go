//go:build unix

package local

import (
	"errors"
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

// openNoFollow makes opening a symbolic link fail (ELOOP) instead of
// following it.
const openNoFollow = syscall.O_NOFOLLOW

// isLoop reports whether err is the failure to open a symbolic link with
// openNoFollow.
func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// owner returns the uid owning fi, and whether the system tells.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// checkTrusted reports an error unless dir (followed if a symbolic link) is
// owned by this user and writable by nobody else: anyone who may write in
// a registry directory registers services (and so commands of the bot) and
// plants files the registry opens.
func checkTrusted(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if uid, ok := owner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (%d)", dir, uid, os.Getuid())
	}
	if m := fi.Mode(); m.Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by others (mode %v)", dir, m.Perm())
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
