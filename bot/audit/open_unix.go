//go:build unix

package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow makes opening a symbolic link fail (ELOOP).
const openNoFollow = syscall.O_NOFOLLOW

func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// checkOwn reports an error unless the file fi (at path) is this user's
// and nobody else may write to it: a log another user can change proves
// nothing.
func checkOwn(path string, fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("audit log %s belongs to uid %d, not to this user (%d)", path, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("audit log %s is writable by others (mode %v): make it 0600", path, fi.Mode().Perm())
	}
	return nil
}
