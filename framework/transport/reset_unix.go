//go:build unix

package transport

import (
	"errors"
	"net"
	"syscall"
)

var (
	errConnReset    error = syscall.ECONNRESET
	errTooManyFiles error = syscall.EMFILE
)

// peerClosed reports whether the peer closed nc (or sent something
// unasked), with one read that does not wait.
func peerClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var (
		buf  [1]byte
		n    int
		rerr error
	)
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf[:])
		return true // one attempt, no waiting
	}); err != nil {
		return true
	}
	return !errors.Is(rerr, syscall.EAGAIN) || n > 0
}
