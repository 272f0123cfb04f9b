//go:build unix

package trustedfile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// check reports an error unless the file fi (at path) belongs to this user
// or to root and is not writable by everyone.
func check(path string, fi fs.FileInfo, why string) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() && st.Uid != 0 {
		return fmt.Errorf("%s belongs to uid %d, neither this user (%d) nor root: %s", path, st.Uid, os.Getuid(), why)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%s is writable by others (mode %v): %s; chmod o-w it", path, fi.Mode().Perm(), why)
	}
	return nil
}
