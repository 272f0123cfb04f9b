package local

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// DefaultDir returns the registry directory used when none is given, one
// per user:
//
//  1. $XDG_RUNTIME_DIR/microbot/registry, if XDG_RUNTIME_DIR is set to an
//     absolute directory owned by the user (a tmpfs cleared at logout on
//     most Linux systems);
//  2. else <os.UserCacheDir()>/microbot/registry (~/.cache, ~/Library/Caches,
//     %LocalAppData%);
//  3. else <os.TempDir()>/microbot-<uid>/registry, where microbot-<uid> must
//     be a directory of the user's, mode 0700 (it is created so).
//
// Processes started in different environments (a service manager without
// XDG_RUNTIME_DIR, another user) may get different directories; give them
// one with --registry_address.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) && checkOwned(d, false) == nil {
		return filepath.Join(d, "microbot", "registry"), nil
	}
	if d, err := os.UserCacheDir(); err == nil && filepath.IsAbs(d) {
		return filepath.Join(d, "microbot", "registry"), nil
	}
	top := "microbot"
	if uid := os.Getuid(); uid >= 0 {
		top += "-" + strconv.Itoa(uid)
	}
	top = filepath.Join(os.TempDir(), top)
	// In a shared temporary directory anyone may have made this first.
	if err := os.Mkdir(top, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("local registry: %w", err)
	}
	if err := checkOwned(top, true); err != nil {
		return "", fmt.Errorf("local registry: %w; give a directory with --registry_address", err)
	}
	return filepath.Join(top, "registry"), nil
}

// dirStamp identifies a version of the list of names in a directory (see
// stamp).
type dirStamp struct {
	ino   uint64
	size  int64
	mtime int64 // unix nanoseconds
}
