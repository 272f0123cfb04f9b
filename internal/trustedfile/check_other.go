//go:build !unix

package trustedfile

import "io/fs"

// check checks nothing on this system: it has no Unix owner and mode.
func check(string, fs.FileInfo, string) error { return nil }
