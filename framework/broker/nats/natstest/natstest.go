// Package natstest starts real NATS servers (nats-server, the Debian
// package) for tests: each in a temporary directory with its own
// configuration, listening on a free loopback port only (no monitoring,
// no cluster, no leaf or gateway ports), so servers of parallel tests never
// collide. A server can be stopped, killed, paused and started again on the
// same address, to test reconnection.
//
// The binary is found at $MICROBOT_NATS_SERVER, on PATH or in /usr/sbin.
// When it is missing the test fails under CI=true and is skipped elsewhere
// (internal/testenv); .ci/setup.d/nats.sh installs it.
package natstest

import (
	"fmt"
	"testing"

	"github.com/microbot/microbot/internal/testenv"
)

// Server is a running (or stopped) nats-server.
type Server struct {
	*testenv.Proc
	// Addr is the client address, 127.0.0.1:port.
	Addr string
}

// Find returns the path of nats-server, or an error saying what is missing.
func Find() (string, error) {
	return testenv.LookPath("nats-server", "MICROBOT_NATS_SERVER", "apt-get install nats-server", "/usr/sbin")
}

// Start writes a configuration into a temporary directory and starts
// nats-server with it; the server is killed when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := Find()
	testenv.Require(tb, "nats-server", err)
	p, addr := testenv.StartWithConfig(tb, "nats-server", bin, "nats.conf", func(addr string, port int) string {
		return fmt.Sprintf(`# written by natstest
listen: %q
server_name: natstest_%d
max_payload: 1MB
write_deadline: "10s"
`, addr, port)
	})
	return &Server{Proc: p, Addr: addr}
}

// URL returns the server's client URL, nats://127.0.0.1:port.
func (s *Server) URL() string { return "nats://" + s.Addr }
