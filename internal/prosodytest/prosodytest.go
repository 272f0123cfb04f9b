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
	"strings"
	"sync"
	"syscall"
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

// Server is a running (or stopped) prosody.
type Server struct {
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

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
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
	prosody = os.Getenv("MICROBOT_PROSODY")
	if prosody == "" {
		if prosody, err = exec.LookPath("prosody"); err != nil {
			return "", "", fmt.Errorf("prosody not on PATH (apt-get install prosody, or set MICROBOT_PROSODY): %w", err)
		}
	} else if prosody, err = exec.LookPath(prosody); err != nil {
		return "", "", fmt.Errorf("MICROBOT_PROSODY: %w", err)
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
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("prosody's logs:\n%s", s.Logs())
		}
	})
	s.Start()
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

// Start starts the (stopped) server and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("prosodytest: Start: already running")
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, "prosody.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(s.bin, "-F", "--config", s.config)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := testenv.StartCommand(cmd); err != nil {
		s.t.Fatalf("prosodytest: starting %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(startTimeout)
	for _, addr := range []string{s.Addr, s.TLSAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-exited:
				s.cmd = nil
				s.t.Fatalf("prosodytest: prosody exited at start-up:\n%s", s.logs())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				s.killLocked()
				s.t.Fatalf("prosodytest: prosody did not listen on %s within %v:\n%s", addr, startTimeout, s.logs())
			}
		}
	}
}

// Stop stops the server gracefully (SIGTERM: clients get a stream error
// and a closed stream), killing it if it takes longer than 10 s.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		s.cmd = nil
	case <-time.After(10 * time.Second):
		s.t.Log("prosodytest: prosody ignored SIGTERM for 10s; killing it")
		s.killLocked()
	}
}

// Restart stops and starts the server on the same ports.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, like a host that vanished from the network.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume unfreezes a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
	s.cmd = nil
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

// Logs returns the server's log, for failure messages.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs()
}

func (s *Server) logs() string {
	var b strings.Builder
	for _, f := range []string{"prosody.out", "prosody.log"} {
		data, _ := os.ReadFile(filepath.Join(s.Dir, f))
		if len(data) > 16<<10 {
			data = data[len(data)-16<<10:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", f, data)
	}
	return b.String()
}
