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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	return testenv.Built(filepath.Join("tools", "consul", "go.mod"), filepath.Join("tools", "consul", "consul-agent"), EnvAgent, ".ci/setup.d/consul.sh")
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
	dir    string // holds the agent's configuration, log and, in a cluster, its data
	name   string // node name
	http   int    // the HTTP API's port (HTTPS with WithTLS)
	serf   int
	server int
	token  string
	tls    *TLSFiles
	proc   *testenv.Proc
}

// Start starts an agent in -dev mode (a single server, state in memory) on
// free loopback ports and waits until it is leader and its node is in the
// catalog. The agent is stopped when the test ends. If the binary is
// missing, Start fails the test under CI=true and skips it otherwise.
func Start(tb testing.TB, opts ...Option) *Agent {
	tb.Helper()
	a := newAgents(tb, 0, opts)[0]
	if err := a.start(); err != nil {
		tb.Fatalf("consultest: %v", err)
	}
	return a
}

// newAgents prepares a -dev agent (n = 0) or a cluster of n server agents
// on free ports, stopped when the test ends.
func newAgents(tb testing.TB, n int, opts []Option) []*Agent {
	tb.Helper()
	bin, err := AgentPath()
	testenv.Require(tb, "consul agent", err)
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dev := n == 0
	if dev {
		n = 1
	}
	ports := testenv.FreeTCPUDPPorts(tb, 3*n) // Serf listens on both
	var joins []string
	for i := range n {
		joins = append(joins, "-retry-join", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i+1])))
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
			dir: tb.TempDir(), name: fmt.Sprintf("server-%d", i),
			http: ports[3*i], serf: ports[3*i+1], server: ports[3*i+2],
			token: token, tls: files,
		}
		var extra []string
		if dev {
			a.name = "consultest"
			extra = []string{"-dev"}
		} else {
			extra = append([]string{"-server", "-bootstrap-expect", strconv.Itoa(n),
				"-data-dir", filepath.Join(a.dir, "data"), "-retry-interval", "1s"}, joins...)
		}
		cfgFile := filepath.Join(a.dir, "config.hcl")
		if err := os.WriteFile(cfgFile, []byte(a.config()), 0o600); err != nil {
			tb.Fatal(err)
		}
		a.proc = testenv.NewProc(tb, testenv.ProcConfig{
			Name: "consul agent " + a.name, Dir: a.dir, LogFile: "agent.log",
			Path: bin, Args: append(a.args(cfgFile), extra...),
			Env:   append(os.Environ(), "CONSUL_HTTP_ADDR=", "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_SSL="), // no leak from the caller's env
			Ready: a.ready, StartTimeout: StartTimeout, Poll: 100 * time.Millisecond,
			StopTimeout: 15 * time.Second, StopAtCleanup: true,
		})
		agents[i] = a
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
func (a *Agent) LogPath() string { return a.proc.LogPath() }

// Running reports whether the agent process is up.
func (a *Agent) Running() bool { return a.proc.Running() }

// Stop stops the agent (SIGTERM, then SIGKILL after 15 s) and waits for it to
// exit. A -dev agent loses its state; a cluster member keeps it in its data
// directory, and does not leave the cluster: the others see it fail.
// Stopping a stopped agent does nothing.
func (a *Agent) Stop() error {
	_ = a.proc.Stop() // killed after 15 s: stopped all the same (logged)
	return nil
}

// Kill kills the agent at once (SIGKILL), as a crash would, and waits for it
// to exit.
func (a *Agent) Kill() error {
	a.proc.Kill()
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

// start launches the agent and waits until it is ready; one not ready in
// time is killed.
func (a *Agent) start() error {
	if err := a.proc.Launch(); err != nil {
		return err
	}
	return a.proc.WaitReady()
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

// args are the agent's flags but its role's (-dev, or a cluster server's).
func (a *Agent) args(cfgFile string) []string {
	httpPort := a.http
	if a.tls != nil {
		httpPort = -1 // HTTPS only, on a.http (config.hcl)
	}
	return []string{
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

// ready is ready once the agent knows a leader and the catalog shows the
// agent's own node with a passing serfHealth, so registrations sync at
// once.
func (a *Agent) ready(ctx context.Context, _ *testenv.Proc) error {
	client, err := a.httpClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	var leader string
	if err := a.getJSON(ctx, client, "/v1/status/leader", &leader); err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	var checks []struct{ CheckID, Status string }
	if err := a.getJSON(ctx, client, "/v1/health/node/"+a.name, &checks); err != nil {
		return err
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" && c.Status == "passing" {
			return nil
		}
	}
	return errors.New("agent's node not alive in the catalog yet")
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
