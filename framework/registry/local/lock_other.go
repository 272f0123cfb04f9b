//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package local

import (
	"errors"
	"os"
)

// errLocked says the lock is held by someone else.
var errLocked = errors.New("locked")

// tryLock does nothing here: on this system the directory is locked within
// the process only, so the removal of an expired file may race with another
// process refreshing it (the refresh is then lost until the next one).
func tryLock(*os.File) error { return nil }

// unlock does nothing.
func unlock(*os.File) {}
