//go:build unix

package access

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkTrusted reports an error unless the file fi (at path) belongs to
// this user or to root and is not writable by everyone. (A group that may
// write it, say the ops team editing the policy, is a choice.)
func checkTrusted(path string, fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() && st.Uid != 0 {
		return fmt.Errorf("%s belongs to uid %d, neither this user (%d) nor root: whoever may change it decides who may run what", path, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%s is writable by others (mode %v): whoever may change it decides who may run what; chmod o-w it", path, fi.Mode().Perm())
	}
	return nil
}
