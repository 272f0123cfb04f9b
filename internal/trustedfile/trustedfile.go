// Package trustedfile reads the files microbot is told to trust by a flag —
// the access policy, the notification routes, the CA certificates of the
// XMPP server — only when no one but their owner could have changed them:
// a file that belongs to another user (root apart), or that everyone may
// write, lets that user, or anyone, decide what the file decides.
//
// A group that may write the file (say, the ops team editing the policy)
// is allowed: that is a choice its owner made. Links are followed (a
// Kubernetes ConfigMap is a link to a root-owned file), and the file
// checked is the one opened. Other systems than Unix have no such owner
// and mode, and their files are read without the checks.
package trustedfile

import (
	"fmt"
	"io"
	"os"
)

// Read returns the contents of the file at path, at most limit bytes, if it
// belongs to this user or to root and is not writable by others. why says
// what whoever may change the file could do; the refusal ends with it
// ("…: whoever may change it decides who may run what"). A larger file is
// refused too. Errors name path.
func Read(path string, limit int64, why string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := check(path, fi, why); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
