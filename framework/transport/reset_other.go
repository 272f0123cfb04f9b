//go:build !unix

package transport

import (
	"errors"
	"net"
	"os"
	"time"
)

var (
	errConnReset    = errors.New("connection reset")
	errTooManyFiles = errors.New("too many open files")
)

// peerClosed reports whether the peer closed nc, with a read that waits a
// millisecond at most.
func peerClosed(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(time.Millisecond)) //nolint:errcheck
	defer nc.SetReadDeadline(time.Time{})                //nolint:errcheck
	var b [1]byte
	_, err := nc.Read(b[:])
	return !errors.Is(err, os.ErrDeadlineExceeded)
}
