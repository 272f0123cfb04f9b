// Package node holds what the server and the http broker both need to be
// found: a random node id, the address to publish for a listener, and the
// loop that keeps registrations alive.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"time"
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

// Renew calls register every interval until ctx ends, each call bounded
// by the interval (at least 5 s): what a service does to keep its node
// registered, and the http broker its subscribers. The first failure is
// logged (log, with args) and so is the first success after failures;
// failures in between are not, so a registry that is down for an hour
// makes two lines. It returns when ctx ends; every <= 0 returns at once.
func Renew(ctx context.Context, every time.Duration, log *slog.Logger, register func(context.Context) error, args ...any) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		err := register(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("registering again failed; will retry", append(args, "every", every, "err", err)...)
			failing = true
		case err == nil && failing:
			log.Info("registered again", args...)
			failing = false
		}
	}
}
