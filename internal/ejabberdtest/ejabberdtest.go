// Package ejabberdtest starts real ejabberd XMPP servers for tests, a second
// server next to prosody (internal/prosodytest): each in its own temporary
// directory with its own configuration, database (Mnesia), log, Erlang
// cookie and self-signed certificate, listening on free loopback ports only.
// The Erlang node needs no epmd (it listens for its control commands on a
// free port of its own, -erl_epmd_port), so nothing uses a fixed port and
// servers of parallel tests never collide. A prosodytest.Human can log in to
// one (Server implements prosodytest.Host).
//
// ejabberd is found through Debian's ejabberdctl (which names the Erlang
// runtime and ejabberd's libraries), at $MICROBOT_EJABBERDCTL or
// /usr/sbin/ejabberdctl; .ci/setup.d/ejabberd.sh installs it. When it is
// missing the test fails under CI=true and is skipped elsewhere.
package ejabberdtest

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
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
// multi-user chat service (XEP-0045; rooms are created on first join, and
// show their occupants' real JIDs).
const (
	Domain    = "localhost"
	MUCDomain = "conference.localhost"
)

// startTimeout bounds the wait for ejabberd to listen, and every control
// command (an Erlang VM starts in a second or two; a loaded machine is
// slower).
const startTimeout = 60 * time.Second

// Install says where ejabberd is: the Erlang runtime and ejabberd's
// libraries, as Debian's ejabberdctl names them.
type Install struct {
	Erl    string // the erl program
	ErlLib string // ERL_LIBS: the directory holding ejabberd-*/ and its dependencies
}

// Find reads ejabberdctl ($MICROBOT_EJABBERDCTL, else /usr/sbin/ejabberdctl
// or ejabberdctl on PATH) for the Erlang runtime and ejabberd's libraries.
func Find() (*Install, error) {
	ctl := os.Getenv("MICROBOT_EJABBERDCTL")
	if ctl == "" {
		ctl = "/usr/sbin/ejabberdctl"
		if _, err := os.Stat(ctl); err != nil {
			if ctl, err = exec.LookPath("ejabberdctl"); err != nil {
				return nil, fmt.Errorf("ejabberdctl not found (apt-get install ejabberd, or set MICROBOT_EJABBERDCTL): %w", err)
			}
		}
	}
	f, err := os.Open(ctl)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	in := &Install{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "ERL="); ok && in.Erl == "" {
			in.Erl = strings.Trim(v, `"'`)
		}
		if v, ok := strings.CutPrefix(line, "ERL_LIBS="); ok && in.ErlLib == "" {
			in.ErlLib = strings.Trim(v, `"'`)
		}
	}
	if in.Erl == "" || in.ErlLib == "" {
		return nil, fmt.Errorf("%s does not name ERL and ERL_LIBS: not the ejabberdctl of an ejabberd package", ctl)
	}
	if _, err := os.Stat(in.Erl); err != nil {
		return nil, fmt.Errorf("erl: %w", err)
	}
	if m, _ := filepath.Glob(filepath.Join(in.ErlLib, "ejabberd-*", "ebin")); len(m) == 0 {
		return nil, fmt.Errorf("no ejabberd-*/ebin in %s", in.ErlLib)
	}
	return in, nil
}

// Server is a running (or stopped) ejabberd.
type Server struct {
	// Addr is the c2s address (STARTTLS required).
	Addr string
	// CAFile is the PEM file of the server's self-signed certificate, to
	// trust as a CA.
	CAFile string
	// Dir is the server's directory (config, database, logs).
	Dir string

	t        testing.TB
	in       *Install
	node     string // the Erlang node, name@localhost
	cookie   string
	distPort int // the node's distribution port (control commands)
	config   string
	certPool *x509.CertPool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	ctls   int // control commands run, for unique node names
}

// Start writes a configuration into a temporary directory and starts
// ejabberd with it; the server is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	in, err := Find()
	testenv.Require(t, "ejabberd", err)
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	s := &Server{t: t, in: in, Dir: t.TempDir(), cookie: hex.EncodeToString(id)}
	s.node = "ejabberdtest" + s.cookie[:8] + "@localhost"
	for _, d := range []string{"db", "logs", "certs"} {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cert := testenv.SelfSigned(t, filepath.Join(s.Dir, "certs"), Domain, MUCDomain)
	s.certPool, s.CAFile = cert.Pool, cert.CertFile
	pemFile := filepath.Join(s.Dir, "certs", "server.pem")
	if err := os.WriteFile(pemFile, cert.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := testenv.FreePorts(t, 2)
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	s.distPort = ports[1]
	s.writeConfig(ports[0], pemFile)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("ejabberd's logs:\n%s", s.Logs())
		}
	})
	s.Start()
	return s
}

func (s *Server) writeConfig(c2s int, pemFile string) {
	q := strconv.Quote
	cfg := fmt.Sprintf(`# written by ejabberdtest
hosts:
  - %s
loglevel: %s
certfiles:
  - %s
listen:
  -
    port: %d
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: c2s_shaper
    access: c2s
    starttls_required: true
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
shaper:
  normal: 10000000
shaper_rules:
  c2s_shaper:
    none: all
auth_method: internal
auth_password_format: scram
modules:
  mod_disco: {}
  mod_muc:
    host: %s
    access_create: all
    default_room_options:
      anonymous: false
      persistent: false
      mam: false
  mod_ping: {}
  mod_roster: {}
  mod_stream_mgmt: {}
`, q(Domain), logLevel(), q(pemFile), c2s, q(MUCDomain))
	s.config = filepath.Join(s.Dir, "ejabberd.yml")
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// logLevel is the level of the servers' logs: $MICROBOT_EJABBERD_LOG, or
// info ("debug" logs every stanza).
func logLevel() string {
	switch l := os.Getenv("MICROBOT_EJABBERD_LOG"); l {
	case "debug", "info", "warning", "error":
		return l
	}
	return "info"
}

// erl returns the command running the Erlang VM as node with args, in the
// server's environment: its config, log and home (cookie) in Dir, and no
// epmd (the node's distribution port is distPort).
func (s *Server) erl(node string, args ...string) *exec.Cmd {
	base := []string{"-sname", node, "-setcookie", s.cookie,
		"-erl_epmd_port", strconv.Itoa(s.distPort), "-start_epmd", "false", "-noinput"}
	cmd := exec.Command(s.in.Erl, append(base, args...)...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(),
		"HOME="+s.Dir,
		"ERL_LIBS="+s.in.ErlLib,
		"EJABBERD_CONFIG_PATH="+s.config,
		"EJABBERD_LOG_PATH="+filepath.Join(s.Dir, "logs", "ejabberd.log"),
		"ERL_CRASH_DUMP=/dev/null",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Start starts the (stopped) server and waits until it accepts
// connections.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("ejabberdtest: Start: already running")
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, "logs", "erl.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer out.Close()
	cmd := s.erl(s.node, "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-mnesia", "dir", strconv.Quote(filepath.Join(s.Dir, "db")), "-s", "ejabberd")
	cmd.Stdout, cmd.Stderr = out, out
	if err := testenv.StartCommand(cmd); err != nil {
		s.t.Fatalf("ejabberdtest: starting %s: %v", s.in.Erl, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(startTimeout)
	for {
		// Listening is not enough: the accounts' table may not exist yet.
		// ejabberd says it runs once every module has started.
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			_ = c.Close()
			if out, err := s.ctlLocked("status"); err == nil && strings.Contains(out, "is running in that node") {
				return
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			s.t.Fatalf("ejabberdtest: ejabberd exited at start-up:\n%s", s.logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.killLocked()
			s.t.Fatalf("ejabberdtest: ejabberd did not listen on %s within %v:\n%s", s.Addr, startTimeout, s.logs())
		}
	}
}

// Stop stops the server (SIGTERM, which ejabberd takes as a clean
// shutdown), killing it if it takes longer than 20 s.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		s.cmd = nil
	case <-time.After(20 * time.Second):
		s.t.Log("ejabberdtest: ejabberd ignored SIGTERM for 20s; killing it")
		s.killLocked()
	}
}

func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

// killLocked kills the VM's whole process group (the VM and its helper
// processes).
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
	if out, err := s.Ctl("register", user, Domain, password); err != nil {
		s.t.Fatalf("ejabberdtest: register %s: %v\n%s", user, err, out)
	}
}

// Ctl runs an ejabberdctl command on the server (as "ejabberdctl args...")
// and returns its output.
func (s *Server) Ctl(args ...string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctlLocked(args...)
}

func (s *Server) ctlLocked(args ...string) (string, error) {
	s.ctls++
	node := fmt.Sprintf("ctl%d-%s", s.ctls, s.node)
	cmd := s.erl(node, append([]string{"-hidden", "-dist_listen", "false", "-s", "ejabberd_ctl", "-extra", s.node}, args...)...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(startTimeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return string(out), errors.New("ejabberd_ctl hung")
	}
	return string(out), err
}

// ClientAddr returns the c2s address (Addr).
func (s *Server) ClientAddr() string { return s.Addr }

// CertPool returns a pool that trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.certPool }

// TLSConfig returns a TLS configuration that trusts the server.
func (s *Server) TLSConfig() *tls.Config { return &tls.Config{RootCAs: s.certPool} }

// JID returns user's bare JID on the server.
func JID(user string) string { return user + "@" + Domain }

// Room returns the JID of the room name on the server's MUC service.
func Room(name string) string { return name + "@" + MUCDomain }

// Logs returns the end of the server's logs, for failure messages.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs()
}

func (s *Server) logs() string {
	var b strings.Builder
	for _, f := range []string{"erl.out", "ejabberd.log", "error.log"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, "logs", f))
		if err != nil {
			continue
		}
		if len(data) > 16<<10 {
			data = data[len(data)-16<<10:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", f, data)
	}
	return b.String()
}
