// Package consultest starts a real Consul agent for tests: one server agent in
// -dev mode (in-memory state) listening on free loopback ports, which it can
// stop and start again on the same ports to show what happens to clients
// when Consul goes away and comes back.
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
	"sync"
	"syscall"
	"testing"
	"time"

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
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvAgent, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "consul", "go.mod")); err == nil {
			p := filepath.Join(dir, "tools", "consul", "consul-agent")
			if err := executable(p); err != nil {
				return "", fmt.Errorf("%w (build it with: bash .ci/setup.d/consul.sh)", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no tools/consul above the working directory and %s unset", EnvAgent)
		}
		dir = parent
	}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// Agent is a running (or stopped) Consul agent started by Start.
type Agent struct {
	bin    string
	dir    string // holds the agent's log
	name   string // node name
	http   int
	serf   int
	server int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logf *os.File
}

// Start starts an agent on free loopback ports and waits until it is leader
// and its node is in the catalog. The agent is stopped when the test ends.
// If the binary is missing, Start fails the test under CI=true and skips it
// otherwise.
func Start(tb testing.TB) *Agent {
	tb.Helper()
	bin, err := AgentPath()
	testenv.Require(tb, "consul agent", err)
	a := &Agent{bin: bin, dir: tb.TempDir(), name: "consultest"}
	ports, err := freePorts(3)
	if err != nil {
		tb.Fatalf("consultest: free ports: %v", err)
	}
	a.http, a.serf, a.server = ports[0], ports[1], ports[2]
	tb.Cleanup(func() {
		if err := a.Stop(); err != nil {
			tb.Errorf("consultest: stop agent: %v", err)
		}
	})
	if err := a.start(); err != nil {
		tb.Fatalf("consultest: %v", err)
	}
	return a
}

// Addr is the agent's HTTP API address, host:port on 127.0.0.1.
func (a *Agent) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.http)) }

// URL is the agent's HTTP API base URL.
func (a *Agent) URL() string { return "http://" + a.Addr() }

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
// exit. Its state is lost: it runs in -dev mode. Stopping a stopped agent
// does nothing.
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
// waiting for it to be leader. The new agent starts empty.
func (a *Agent) Restart() error {
	if err := a.Stop(); err != nil {
		return err
	}
	return a.start()
}

func (a *Agent) start() error {
	a.mu.Lock()
	if a.cmd != nil {
		a.mu.Unlock()
		return errors.New("agent already running")
	}
	logf, err := os.OpenFile(a.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "\n==== consultest: starting agent at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(a.bin,
		"-dev",
		"-node", a.name,
		"-client", "127.0.0.1",
		"-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(a.http),
		"-serf-lan-port", strconv.Itoa(a.serf),
		"-server-port", strconv.Itoa(a.server),
		"-serf-wan-port", "-1",
		"-dns-port", "-1",
		"-grpc-port", "-1",
		"-grpc-tls-port", "-1",
		"-log-level", "info",
		"-hcl", "disable_update_check = true",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR=") // no leak from the caller's env
	if err := cmd.Start(); err != nil {
		logf.Close()
		a.mu.Unlock()
		return fmt.Errorf("start %s: %w", a.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	a.cmd, a.done, a.logf = cmd, done, logf
	a.mu.Unlock()

	if err := a.waitReady(done); err != nil {
		_ = a.Kill()
		return fmt.Errorf("agent on %s not ready: %w\n--- agent log tail:\n%s", a.Addr(), err, a.logTail(4000))
	}
	return nil
}

// waitReady waits until the agent has a leader and the catalog shows the
// agent's own node with a passing serfHealth, so registrations sync at once.
func (a *Agent) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
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
		if last = getJSON(ctx, client, a.URL()+"/v1/status/leader", &leader); last != nil {
			continue
		}
		if leader == "" {
			last = errors.New("no leader yet")
			continue
		}
		var entries []json.RawMessage
		if last = getJSON(ctx, client, a.URL()+"/v1/health/service/consul?passing=1", &entries); last != nil {
			continue
		}
		if len(entries) == 0 {
			last = errors.New("agent's node not in the catalog yet")
			continue
		}
		return nil
	}
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
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
