// Package consultest starts real Consul agents for tests, listening on free
// loopback ports: one server agent in -dev mode (in-memory state), or a
// cluster of servers (StartCluster) to show leader elections; optionally
// with ACLs on (default policy deny) and with the HTTP API over TLS with
// client certificates. Agents can be stopped, killed and started again on
// the same ports to show what happens to clients when Consul goes away and
// comes back.
//
// The agent is the binary .ci/setup.d/consul.sh builds from tools/consul. It
// is found through the MICROBOT_CONSUL_AGENT environment variable, else at
// tools/consul/consul-agent in the repository; when it is missing, Start
// fails the test under CI=true and skips it elsewhere (see internal/testenv).
package consultest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/internal/testenv"
)

// EnvAgent names the environment variable holding the path of the agent
// binary; it wins over the default tools/consul/consul-agent.
const EnvAgent = "MICROBOT_CONSUL_AGENT"

// StartTimeout bounds how long Start and Restart wait for the agent to elect
// itself leader and sync its node. It is generous: the test machines are
// small and busy.
const StartTimeout = 60 * time.Second

// AgentPath returns the path of the Consul agent binary: $MICROBOT_CONSUL_AGENT
// if set, else tools/consul/consul-agent found by walking up from the working
// directory to the repository root. It returns an error saying how to build
// the binary if there is none.
func AgentPath() (string, error) {
	if p := os.Getenv(EnvAgent); p != "" {
		if err := testenv.Executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvAgent, p, err)
		}
		return p, nil
	}
	root, err := testenv.FindUp(filepath.Join("tools", "consul", "go.mod"))
	if err != nil {
		return "", fmt.Errorf("%w, and %s unset", err, EnvAgent)
	}
	p := filepath.Join(root, "tools", "consul", "consul-agent")
	if err := testenv.Executable(p); err != nil {
		return "", fmt.Errorf("%w (build it with: bash .ci/setup.d/consul.sh)", err)
	}
	return p, nil
}

// Option configures the agents Start and StartCluster run.
type Option func(*options)

type options struct {
	acl bool
	tls bool
}

// WithACL turns Consul's ACLs on with default policy deny: a request
// without a token may do and see nothing. The agents run with a management
// token (Agent.ManagementToken) as their own token; tests create tokens with
// narrower policies with Agent.CreateToken.
func WithACL() Option { return func(o *options) { o.acl = true } }

// WithTLS makes the agents serve their HTTP API over HTTPS only, with a
// certificate signed by a test CA generated for the test, and require a
// client certificate signed by the same CA (Agent.TLS gives the files).
func WithTLS() Option { return func(o *options) { o.tls = true } }

// TLSFiles are the PEM files of a TLS agent's test CA and of a client
// certificate it accepts.
type TLSFiles struct {
	CAFile   string // the test CA's certificate (CONSUL_CACERT)
	CertFile string // a client certificate signed by the CA (CONSUL_CLIENT_CERT)
	KeyFile  string // its key (CONSUL_CLIENT_KEY)

	serverCert, serverKey string // the agent's own certificate and key
}

// Agent is a running (or stopped) Consul agent started by Start or
// StartCluster.
type Agent struct {
	bin    string
	dir    string // holds the agent's log and, in a cluster, its data
	name   string // node name
	http   int    // the HTTP API's port (HTTPS with WithTLS)
	serf   int
	server int
	dev    bool
	expect int   // cluster: -bootstrap-expect
	joins  []int // cluster: the Serf ports of every server
	token  string
	tls    *TLSFiles

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logf *os.File
}

// Start starts an agent in -dev mode (a single server, state in memory) on
// free loopback ports and waits until it is leader and its node is in the
// catalog. The agent is stopped when the test ends. If the binary is
// missing, Start fails the test under CI=true and skips it otherwise.
func Start(tb testing.TB, opts ...Option) *Agent {
	tb.Helper()
	agents := newAgents(tb, 1, opts)
	a := agents[0]
	a.dev, a.name = true, "consultest"
	if err := a.start(); err != nil {
		tb.Fatalf("consultest: %v", err)
	}
	return a
}

// newAgents prepares n agents on free ports, stopped when the test ends.
func newAgents(tb testing.TB, n int, opts []Option) []*Agent {
	tb.Helper()
	bin, err := AgentPath()
	testenv.Require(tb, "consul agent", err)
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ports, err := freePorts(3 * n)
	if err != nil {
		tb.Fatalf("consultest: free ports: %v", err)
	}
	var token string
	if o.acl {
		token = uuid()
	}
	var files *TLSFiles
	if o.tls {
		if files, err = writeTestCA(tb.TempDir()); err != nil {
			tb.Fatalf("consultest: test CA: %v", err)
		}
	}
	agents := make([]*Agent, n)
	for i := range agents {
		a := &Agent{
			bin: bin, dir: tb.TempDir(), name: fmt.Sprintf("server-%d", i),
			http: ports[3*i], serf: ports[3*i+1], server: ports[3*i+2],
			token: token, tls: files,
		}
		agents[i] = a
		tb.Cleanup(func() {
			if err := a.Stop(); err != nil {
				tb.Errorf("consultest: stop agent %s: %v", a.name, err)
			}
		})
	}
	return agents
}

// Name is the agent's node name.
func (a *Agent) Name() string { return a.name }

// Addr is the agent's HTTP API address, host:port on 127.0.0.1 (HTTPS with
// WithTLS).
func (a *Agent) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.http)) }

// URL is the agent's HTTP API base URL.
func (a *Agent) URL() string {
	if a.tls != nil {
		return "https://" + a.Addr()
	}
	return "http://" + a.Addr()
}

// ServerAddr is the agent's server RPC address, as /v1/status/leader and
// /v1/status/peers name servers.
func (a *Agent) ServerAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.server))
}

// ManagementToken is the token allowed everything when the agent runs with
// WithACL, empty otherwise.
func (a *Agent) ManagementToken() string { return a.token }

// TLS returns the test CA and client certificate files of an agent started
// WithTLS, nil otherwise.
func (a *Agent) TLS() *TLSFiles { return a.tls }

// Env returns the CONSUL_* environment variables a client of this agent
// needs (the TLS files with WithTLS), to append to a process's environment.
// It holds no token.
func (a *Agent) Env() []string {
	if a.tls == nil {
		return nil
	}
	return []string{
		"CONSUL_HTTP_SSL=true",
		"CONSUL_CACERT=" + a.tls.CAFile,
		"CONSUL_CLIENT_CERT=" + a.tls.CertFile,
		"CONSUL_CLIENT_KEY=" + a.tls.KeyFile,
	}
}

// API returns a Consul API client of this agent holding the management
// token (with WithACL) and the client certificate (with WithTLS), for tests
// to set Consul up.
func (a *Agent) API() (*api.Client, error) {
	cfg := &api.Config{Address: a.Addr(), Token: a.token}
	if a.tls != nil {
		cfg.Scheme = "https"
		cfg.TLSConfig = api.TLSConfig{CAFile: a.tls.CAFile, CertFile: a.tls.CertFile, KeyFile: a.tls.KeyFile}
	}
	return api.NewClient(cfg)
}

// CreateToken creates an ACL policy with the given rules (Consul's HCL) and
// a token holding it, and returns the token's secret.
func (a *Agent) CreateToken(ctx context.Context, name, rules string) (string, error) {
	c, err := a.API()
	if err != nil {
		return "", err
	}
	q := (&api.WriteOptions{}).WithContext(ctx)
	if _, _, err := c.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, q); err != nil {
		return "", fmt.Errorf("create policy %s: %w", name, err)
	}
	tok, _, err := c.ACL().TokenCreate(&api.ACLToken{Description: name, Policies: []*api.ACLTokenPolicyLink{{Name: name}}}, q)
	if err != nil {
		return "", fmt.Errorf("create token %s: %w", name, err)
	}
	return tok.SecretID, nil
}

// LogPath is the file the agent writes its log to; its tail is included in
// errors from Start and Restart.
func (a *Agent) LogPath() string { return filepath.Join(a.dir, "agent.log") }

// Running reports whether the agent process is up.
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmd != nil
}

// Stop stops the agent (SIGTERM, then SIGKILL after 15 s) and waits for it to
// exit. A -dev agent loses its state; a cluster member keeps it in its data
// directory, and does not leave the cluster: the others see it fail.
// Stopping a stopped agent does nothing.
func (a *Agent) Stop() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stopLocked(syscall.SIGTERM)
}

// Kill kills the agent at once (SIGKILL), as a crash would, and waits for it
// to exit.
func (a *Agent) Kill() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stopLocked(syscall.SIGKILL)
}

func (a *Agent) stopLocked(sig syscall.Signal) error {
	if a.cmd == nil {
		return nil
	}
	_ = a.cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	a.cmd = nil
	if a.logf != nil {
		a.logf.Close()
		a.logf = nil
	}
	return nil
}

// Restart stops the agent if it runs and starts it again on the same ports,
// waiting for it to be ready: a -dev agent starts empty and leader; a
// cluster member starts from its data directory and is ready once the
// cluster has a leader and its node is alive in the catalog.
func (a *Agent) Restart() error {
	if err := a.Stop(); err != nil {
		return err
	}
	return a.start()
}

func (a *Agent) start() error {
	if err := a.launch(); err != nil {
		return err
	}
	return a.ready()
}

// ready waits for the launched agent to be ready, killing it if it is not.
func (a *Agent) ready() error {
	a.mu.Lock()
	done := a.done
	a.mu.Unlock()
	if err := a.waitReady(done); err != nil {
		_ = a.Kill()
		return fmt.Errorf("agent %s on %s not ready: %w\n--- agent log tail:\n%s", a.name, a.Addr(), err, a.logTail(4000))
	}
	return nil
}

// config is the agent's configuration beyond its flags, in Consul's HCL.
func (a *Agent) config() string {
	var b strings.Builder
	b.WriteString("disable_update_check = true\n")
	if a.token != "" {
		fmt.Fprintf(&b, "acl {\n  enabled = true\n  default_policy = \"deny\"\n  enable_token_persistence = true\n  tokens {\n    initial_management = %q\n    agent = %q\n  }\n}\n", a.token, a.token)
	}
	if a.tls != nil {
		fmt.Fprintf(&b, "ports {\n  http = -1\n  https = %d\n}\n", a.http)
		fmt.Fprintf(&b, "tls {\n  defaults {\n    ca_file = %q\n    cert_file = %q\n    key_file = %q\n  }\n  https {\n    verify_incoming = true\n  }\n}\n",
			a.tls.CAFile, a.tls.serverCert, a.tls.serverKey)
	}
	return b.String()
}

// launch starts the agent process without waiting for it to be ready.
func (a *Agent) launch() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		return errors.New("agent already running")
	}
	cfgFile := filepath.Join(a.dir, "config.hcl")
	if err := os.WriteFile(cfgFile, []byte(a.config()), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(a.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n==== consultest: starting agent at %s\n", time.Now().Format(time.RFC3339Nano))
	httpPort := a.http
	if a.tls != nil {
		httpPort = -1 // HTTPS only, on a.http (config.hcl)
	}
	args := []string{
		"-node", a.name,
		"-client", "127.0.0.1",
		"-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(httpPort),
		"-serf-lan-port", strconv.Itoa(a.serf),
		"-server-port", strconv.Itoa(a.server),
		"-serf-wan-port", "-1",
		"-dns-port", "-1",
		"-grpc-port", "-1",
		"-grpc-tls-port", "-1",
		"-log-level", "info",
		"-config-file", cfgFile,
	}
	if a.dev {
		args = append(args, "-dev")
	} else {
		args = append(args, "-server", "-bootstrap-expect", strconv.Itoa(a.expect),
			"-data-dir", filepath.Join(a.dir, "data"), "-retry-interval", "1s")
		for _, p := range a.joins {
			args = append(args, "-retry-join", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		}
	}
	cmd := exec.Command(a.bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR=", "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_SSL=") // no leak from the caller's env
	if err := testenv.StartCommand(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", a.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	a.cmd, a.done, a.logf = cmd, done, logf
	return nil
}

// httpClient is an HTTP client of the agent's API (with the client
// certificate when the agent runs WithTLS).
func (a *Agent) httpClient() (*http.Client, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	if a.tls == nil {
		return c, nil
	}
	tc, err := a.tls.clientConfig()
	if err != nil {
		return nil, err
	}
	c.Transport = &http.Transport{TLSClientConfig: tc}
	return c, nil
}

// waitReady waits until the agent knows a leader and the catalog shows the
// agent's own node with a passing serfHealth, so registrations sync at once.
func (a *Agent) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	client, err := a.httpClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	var last error
	for {
		select {
		case <-exited:
			return errors.New("agent exited")
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v: %v", StartTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
		var leader string
		if last = a.getJSON(ctx, client, "/v1/status/leader", &leader); last != nil {
			continue
		}
		if leader == "" {
			last = errors.New("no leader yet")
			continue
		}
		var checks []struct{ CheckID, Status string }
		if last = a.getJSON(ctx, client, "/v1/health/node/"+a.name, &checks); last != nil {
			continue
		}
		last = errors.New("agent's node not alive in the catalog yet")
		for _, c := range checks {
			if c.CheckID == "serfHealth" && c.Status == "passing" {
				return nil
			}
		}
	}
}

func (a *Agent) getJSON(ctx context.Context, c *http.Client, path string, v any) error {
	return getJSON(ctx, c, a.URL()+path, a.token, v)
}

func getJSON(ctx context.Context, c *http.Client, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

func (a *Agent) logTail(n int) string {
	b, err := os.ReadFile(a.LogPath())
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// freePorts returns n distinct loopback ports free now for both TCP and UDP
// (Serf needs both). They are drawn below the kernel's ephemeral range
// (32768 and up) so that outgoing connections do not take them while a
// stopped agent waits to be restarted on them.
func freePorts(n int) ([]int, error) {
	var ports []int
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for try := 0; len(ports) < n && try < 1000; try++ {
		port := 20000 + rand.IntN(12000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, l, u)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, errors.New("no free loopback ports found")
	}
	return ports, nil
}
