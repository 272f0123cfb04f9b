// Package mosquittotest starts real MQTT brokers (mosquitto, the Debian
// package) for tests: each in a temporary directory with its own
// configuration, listening on a free loopback port only, without
// persistence, so brokers of parallel tests never collide. A broker can be
// stopped, killed, paused and started again on the same address, to test
// reconnection.
//
// The binary is found at $MICROBOT_MOSQUITTO, on PATH or in /usr/sbin.
// When it is missing the test fails under CI=true and is skipped elsewhere
// (internal/testenv); .ci/setup.d/mosquitto.sh installs it.
package mosquittotest

import (
	"fmt"
	"os/user"
	"testing"

	"github.com/microbot/microbot/internal/testenv"
)

// Server is a running (or stopped) mosquitto.
type Server struct {
	*testenv.Proc
	// Addr is the MQTT address, 127.0.0.1:port.
	Addr string
}

// Find returns the path of mosquitto, or an error saying what is missing.
func Find() (string, error) {
	return testenv.LookPath("mosquitto", "MICROBOT_MOSQUITTO", "apt-get install mosquitto", "/usr/sbin")
}

// Start writes a configuration into a temporary directory and starts
// mosquitto with it; the broker is killed when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := Find()
	testenv.Require(tb, "mosquitto", err)
	// mosquitto started by root switches to the user "mosquitto" unless told
	// to stay; as anyone else it stays who it is.
	runAs := ""
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		runAs = "user root\n"
	}
	p, addr := testenv.StartWithConfig(tb, "mosquitto", bin, "mosquitto.conf", func(_ string, port int) string {
		return fmt.Sprintf(`# written by mosquittotest
%slistener %d 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
`, runAs, port)
	})
	return &Server{Proc: p, Addr: addr}
}

// URL returns the broker's address as tcp://127.0.0.1:port.
func (s *Server) URL() string { return "tcp://" + s.Addr }
