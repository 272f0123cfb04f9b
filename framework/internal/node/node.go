// Package node holds what the server and the http broker both need to be
// found: a random node id and the address to publish for a listener.
package node

import (
	"crypto/rand"
	"encoding/hex"
	"net"
)

// Advertised returns the address to publish: adv if set, else the
// listener's, with an unspecified host (0.0.0.0, ::) replaced by a private
// address of this host, or loopback if it has none.
func Advertised(adv string, ln net.Addr) string {
	if adv != "" {
		return adv
	}
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return ln.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = hostIP()
	}
	return net.JoinHostPort(host, port)
}

// hostIP returns a private IPv4 address of this host, or 127.0.0.1.
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsPrivate() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
