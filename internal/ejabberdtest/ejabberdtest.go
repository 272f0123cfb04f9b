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
	"context"
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
	"sync/atomic"
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

// Server is a running (or stopped) ejabberd: Stop (SIGTERM, which
// ejabberd takes as a clean shutdown), Restart, Kill, Logs and the others
// are testenv.Proc's.
type Server struct {
	*testenv.Proc
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

	ctls atomic.Int64 // control commands run, for unique node names
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
	s.Proc = testenv.StartProc(t, testenv.ProcConfig{
		Name: "ejabberd", Dir: s.Dir, Path: s.in.Erl, Env: s.erlEnv(),
		Args: s.erlArgs(s.node, "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
			"-mnesia", "dir", strconv.Quote(filepath.Join(s.Dir, "db")), "-s", "ejabberd"),
		LogFile: filepath.Join("logs", "erl.out"), ExtraLogs: []string{filepath.Join("logs", "ejabberd.log"), filepath.Join("logs", "error.log")},
		Addrs: []string{s.Addr}, Ready: s.running,
		StartTimeout: startTimeout, Poll: 50 * time.Millisecond, StopTimeout: 20 * time.Second,
	})
	return s
}

// running is ready once ejabberd says it runs. Listening is not enough:
// the accounts' table may not exist yet; ejabberd says it runs once every
// module has started.
func (s *Server) running(context.Context, *testenv.Proc) error {
	out, err := s.Ctl("status")
	if err != nil {
		return fmt.Errorf("ejabberdctl status: %w: %s", err, out)
	}
	if !strings.Contains(out, "is running in that node") {
		return fmt.Errorf("ejabberdctl status: %s", out)
	}
	return nil
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

// erlArgs are the arguments of the Erlang VM running as node with args,
// without epmd (the node's distribution port is distPort).
func (s *Server) erlArgs(node string, args ...string) []string {
	base := []string{"-sname", node, "-setcookie", s.cookie,
		"-erl_epmd_port", strconv.Itoa(s.distPort), "-start_epmd", "false", "-noinput"}
	return append(base, args...)
}

// erlEnv is the VM's environment: the server's config, log and home
// (cookie) in Dir.
func (s *Server) erlEnv() []string {
	return append(os.Environ(),
		"HOME="+s.Dir,
		"ERL_LIBS="+s.in.ErlLib,
		"EJABBERD_CONFIG_PATH="+s.config,
		"EJABBERD_LOG_PATH="+filepath.Join(s.Dir, "logs", "ejabberd.log"),
		"ERL_CRASH_DUMP=/dev/null",
	)
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
	node := fmt.Sprintf("ctl%d-%s", s.ctls.Add(1), s.node)
	cmd := exec.Command(s.in.Erl, s.erlArgs(node, append([]string{"-hidden", "-dist_listen", "false", "-s", "ejabberd_ctl", "-extra", s.node}, args...)...)...)
	cmd.Dir, cmd.Env = s.Dir, s.erlEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
