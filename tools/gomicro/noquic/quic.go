// Package quic stands in for github.com/lucas-clemente/quic-go v0.12.1 in
// the go-micro v1.16.0 programs microbot's tests run (tools/gomicro/plugins),
// through a replace in their go.mod.
//
// Why: go-micro v1.16.0's config/cmd links its QUIC transport
// (transport/quic) into every program, and quic-go v0.12.1 panics when it is
// initialised on Go 1.26 ("qtls.ConnectionState not compatible with
// tls.ConnectionState": its copy of crypto/tls is from Go 1.13), before main
// runs, whatever transport the flags pick. The tests use go-micro's http
// transport and never QUIC.
//
// This package has the API go-micro's transport/quic uses (DialAddr,
// ListenAddr, Config, Session, Stream, Listener) and no more: dialling and
// listening fail with ErrUnavailable, so --transport=quic fails at start
// instead of speaking QUIC.
package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// ErrUnavailable is what DialAddr and ListenAddr return.
var ErrUnavailable = errors.New("quic: not available in microbot's go-micro test programs (tools/gomicro/noquic)")

// Config is the configuration of a connection.
type Config struct {
	IdleTimeout time.Duration
	KeepAlive   bool
}

// Stream is a QUIC stream.
type Stream interface {
	io.ReadWriteCloser
	SetWriteDeadline(t time.Time) error
}

// Session is a QUIC connection.
type Session interface {
	AcceptStream(context.Context) (Stream, error)
	OpenStreamSync(context.Context) (Stream, error)
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	Close() error
}

// Listener accepts QUIC connections.
type Listener interface {
	Accept(context.Context) (Session, error)
	Addr() net.Addr
	Close() error
}

// DialAddr returns ErrUnavailable.
func DialAddr(addr string, tlsConf *tls.Config, config *Config) (Session, error) {
	return nil, ErrUnavailable
}

// ListenAddr returns ErrUnavailable.
func ListenAddr(addr string, tlsConf *tls.Config, config *Config) (Listener, error) {
	return nil, ErrUnavailable
}
