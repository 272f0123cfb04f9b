// Package prosodytest starts real prosody XMPP servers for tests: each in
// its own temporary directory, with its own configuration, data, log and
// self-signed certificate, listening on free loopback ports only (no s2s,
// no HTTP, every other port disabled), so servers of parallel tests never
// collide. A Human is a person's XMPP client (input/xmpp/xmppclient) on
// such a server: log in, send, wait for stanzas, join rooms.
//
// The prosody binary is found on PATH, or at $MICROBOT_PROSODY (prosodyctl
// next to it, or at $MICROBOT_PROSODYCTL). When it is missing the test
// fails under CI=true and is skipped elsewhere (internal/testenv).
package prosodytest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// Domain is the XMPP domain of every test server, and MUCDomain its
// multi-user chat service (XEP-0045, rooms unlocked on creation).
const (
	Domain    = "localhost"
	MUCDomain = "conference.localhost"
)

// startTimeout bounds waiting for prosody to listen. prosody hangs rather
// than exits on some configuration errors, so every wait is bounded.
const startTimeout = 30 * time.Second

// Server is a running (or stopped) prosody: Stop, Restart, Kill, Pause,
// Resume, Logs and the others are testenv.Proc's. Stop is SIGTERM: clients
// get a stream error and a closed stream; Pause is like a host that
// vanished from the network.
type Server struct {
	*testenv.Proc
	// Addr is the c2s address (STARTTLS, or plain when Insecure).
	Addr string
	// TLSAddr is the direct-TLS c2s address (XEP-0368).
	TLSAddr string
	// CAFile is the PEM file of the server's self-signed certificate, to
	// trust as a CA.
	CAFile string
	// Dir is the server's directory (config, data, log).
	Dir string

	t        testing.TB
	opts     options
	config   string
	bin, ctl string
	certPool *x509.CertPool
}

type options struct {
	insecure bool
}

// Option configures a Server.
type Option func(*options)

// WithInsecure makes a server that does not require TLS and allows PLAIN
// without it (like a careless development server).
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// Find returns the paths of prosody and prosodyctl, or an error saying what
// is missing.
func Find() (prosody, prosodyctl string, err error) {
	if prosody, err = testenv.LookPath("prosody", "MICROBOT_PROSODY", "apt-get install prosody"); err != nil {
		return "", "", err
	}
	prosodyctl = os.Getenv("MICROBOT_PROSODYCTL")
	if prosodyctl != "" {
		if prosodyctl, err = exec.LookPath(prosodyctl); err != nil {
			return "", "", fmt.Errorf("MICROBOT_PROSODYCTL: %w", err)
		}
	} else {
		prosodyctl = filepath.Join(filepath.Dir(prosody), "prosodyctl")
		if _, err := os.Stat(prosodyctl); err != nil {
			if prosodyctl, err = exec.LookPath("prosodyctl"); err != nil {
				return "", "", fmt.Errorf("prosodyctl not found: %w", err)
			}
		}
	}
	return prosody, prosodyctl, nil
}

// Start writes a configuration into a temporary directory and starts
// prosody with it; the server is killed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, ctl, err := Find()
	testenv.Require(t, "prosody", err)
	s := &Server{t: t, bin: bin, ctl: ctl, Dir: t.TempDir()}
	for _, o := range opts {
		o(&s.opts)
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.writeCert()
	ports := testenv.FreePorts(t, 2)
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	s.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	s.writeConfig(ports[0], ports[1])
	s.Proc = testenv.StartProc(t, testenv.ProcConfig{
		Name: "prosody", Dir: s.Dir, Path: s.bin, Args: []string{"-F", "--config", s.config},
		LogFile: "prosody.out", ExtraLogs: []string{"prosody.log"},
		Addrs: []string{s.Addr, s.TLSAddr}, StartTimeout: startTimeout, Poll: 50 * time.Millisecond,
	})
	return s
}

// writeCert makes a self-signed certificate for the domains and 127.0.0.1,
// usable as its own CA.
func (s *Server) writeCert() {
	c := testenv.SelfSigned(s.t, filepath.Join(s.Dir, "certs"), Domain, MUCDomain)
	s.certPool, s.CAFile = c.Pool, c.CertFile
}

// CertPool returns a pool that trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.certPool }

// ClientAddr returns the c2s address (Addr).
func (s *Server) ClientAddr() string { return s.Addr }

// TLSConfig returns a TLS configuration that trusts the server.
func (s *Server) TLSConfig() *tls.Config { return &tls.Config{RootCAs: s.certPool} }

func (s *Server) writeConfig(c2s, direct int) {
	q := strconv.Quote
	dir := s.Dir
	encryption := `c2s_require_encryption = true
allow_unencrypted_plain_auth = false`
	if s.opts.insecure {
		encryption = `c2s_require_encryption = false
allow_unencrypted_plain_auth = true`
	}
	cfg := fmt.Sprintf(`-- written by prosodytest
run_as_root = true
daemonize = false
pidfile = %s
data_path = %s
certificates = %s
log = { %s = %s }
interfaces = { "127.0.0.1" }
c2s_ports = { %d }
c2s_direct_tls_ports = { %d }
legacy_ssl_ports = {}
s2s_ports = {}
s2s_direct_tls_ports = {}
http_ports = {}
https_ports = {}
http_interfaces = {}
https_interfaces = {}
component_ports = {}
proxy65_ports = {}
admin_socket = %s
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
modules_disabled = { "s2s"; "s2s_auth_certs"; "offline" }
authentication = "internal_plain"
storage = "internal"
%s
ssl = { key = %s; certificate = %s }
limits = { c2s = { rate = "10mb/s" } }

VirtualHost %s

Component %s "muc"
	muc_room_locking = false
	restrict_room_creation = false
	muc_room_default_public_jids = true
`, q(filepath.Join(dir, "prosody.pid")), q(filepath.Join(dir, "data")), q(filepath.Join(dir, "certs")),
		logLevel(), q(filepath.Join(dir, "prosody.log")), c2s, direct, q(filepath.Join(dir, "prosody.sock")), encryption,
		q(filepath.Join(dir, "certs", "key.pem")), q(filepath.Join(dir, "certs", "cert.pem")),
		q(Domain), q(MUCDomain))
	s.config = filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// logLevel is the level of the servers' logs: $MICROBOT_PROSODY_LOG, or
// info ("debug" logs every stanza).
func logLevel() string {
	switch l := os.Getenv("MICROBOT_PROSODY_LOG"); l {
	case "debug", "info", "warn", "error":
		return l
	}
	return "info"
}

// Register creates the account user@Domain with password.
func (s *Server) Register(user, password string) {
	s.t.Helper()
	s.ctlRun("register", user, Domain, password)
}

// Unregister deletes the account user@Domain.
func (s *Server) Unregister(user string) {
	s.t.Helper()
	s.ctlRun("deluser", user+"@"+Domain)
}

func (s *Server) ctlRun(args ...string) {
	s.t.Helper()
	cmd := exec.Command(s.ctl, append([]string{"--config", s.config}, args...)...)
	cmd.Dir = s.Dir
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatalf("prosodytest: prosodyctl %s hung", args[0])
	}
	if err != nil {
		s.t.Fatalf("prosodytest: prosodyctl %s: %v\n%s", args[0], err, out)
	}
}

// JID returns user's bare JID on the server.
func JID(user string) string { return user + "@" + Domain }

// Room returns the JID of the room name on the server's MUC service.
func Room(name string) string { return name + "@" + MUCDomain }
