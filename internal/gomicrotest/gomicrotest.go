// Package gomicrotest starts real go-micro programs for tests: of go-micro
// v1.8.0, the greeter (go.micro.srv.greeter), the bot command service
// (go.micro.bot.echo, go-micro's own agent/proto) and the client that calls
// services with go-micro's own client, as the original `micro bot` did; of
// go-micro v0.10.0 (2018, before protocol=mucp: the old framings only), a
// greeter and a client; and, of go-micro v1.8.0 with its http broker, a
// subscriber and a publisher (pubsub.go); of go-micro v1.16.0, the greeter,
// command service and client again on go-plugins v1.5.1's Consul registry,
// and the publisher and subscriber on go-plugins' MQTT broker. They are the programs of the separate
// modules tools/gomicro, tools/gomicro/v0 and tools/gomicro/plugins (so
// go-micro never enters microbot's go.mod), built by
// .ci/setup.d/gomicro.sh into tools/gomicro/bin/.
//
// The binaries are found in the directory named by MICROBOT_GOMICRO_BIN,
// else in tools/gomicro/bin found by walking up from the working directory
// to the repository root; when one is missing, Start fails the test under
// CI=true and skips it elsewhere (see internal/testenv).
//
// Every program but go-plugins' publisher and subscriber (which use the
// memory registry: MQTT needs none) is started registered in a Consul agent with go-micro's
// own flags and kept on loopback (by default go-micro advertises the first
// non-loopback address of the host and its broker listens on every
// interface):
//
//	--registry=consul --registry_address=ADDR
//	--server_address=127.0.0.1:0 --broker_address=127.0.0.1:0
//
// Flags are not enough for go-micro v1.8.0, which lists and watches its
// mDNS registry from package initialisation on, whatever the flags say: the
// modules replace go-micro's mDNS library with tools/gomicro/nomdns, which
// opens no socket. A program built without that replace fails the test
// that starts it (rebuild with .ci/setup.d/gomicro.sh), and so does one
// that still holds a UDP socket when its test ends.
package gomicrotest

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// EnvBin names the environment variable holding the directory of the
// go-micro test binaries; it wins over tools/gomicro/bin.
const EnvBin = "MICROBOT_GOMICRO_BIN"

// The programs of tools/gomicro/cmd.
const (
	// Greeter is go.micro.srv.greeter: Say.Hello, Say.Fail (answers the
	// error asked for), Say.Count (how often an endpoint ran).
	Greeter = "greeter"
	// Command is the bot command service go.micro.bot.echo (another name
	// with --server_name=go.micro.bot.NAME): Command.Help and Command.Exec,
	// where "NAME fail ..." returns an error, "NAME error ..." sets
	// ExecResponse.error and "NAME count" answers how often Exec ran.
	Command = "command"
	// Client calls services with go-micro's client, one JSON call a line
	// on stdin (see [StartClient]).
	Client = "client"
	// GreeterV0 is go.micro.srv.greeter of go-micro v0.10.0: Say.Hello,
	// and Say.Fail answering a 409 whose detail is the name sent.
	GreeterV0 = "v0/greeter"
	// ClientV0 is go-micro v0.10.0's client, driven as [Client] is (see
	// [StartClientV0]); it knows the messages of Say.Hello, Say.Fail,
	// Command.Help and Command.Exec.
	ClientV0 = "v0/client"
	// GreeterV116, CommandV116 and ClientV116 are [Greeter], [Command] and
	// [Client] written with go-micro v1.16.0 on go-plugins v1.5.1's Consul
	// registry (go-micro v1.16.0 has none of its own), the programs of
	// tools/gomicro/plugins; ClientV116 is driven as Client is (see
	// [StartClientV116]).
	GreeterV116 = "plugins/greeter"
	CommandV116 = "plugins/command"
	ClientV116  = "plugins/client"
)

// StartTimeout bounds how long Start waits for a program to listen and
// register. It is generous: the test machines are small and busy.
const StartTimeout = 60 * time.Second

// CallTimeout bounds one call through a [ClientProcess]; go-micro's client
// has its own 5 s timeout per call and retries once.
const CallTimeout = 60 * time.Second

// BinPath returns the path of program name: in $MICROBOT_GOMICRO_BIN if set,
// else in tools/gomicro/bin found by walking up from the working directory
// to the repository root. It returns an error saying how to build the
// binaries if there is none.
func BinPath(name string) (string, error) {
	if dir := os.Getenv(EnvBin); dir != "" {
		p := filepath.Join(dir, name)
		if err := testenv.Executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBin, dir, err)
		}
		return p, nil
	}
	return testenv.Built(filepath.Join("tools", "gomicro", "go.mod"), filepath.Join("tools", "gomicro", "bin", name), EnvBin, ".ci/setup.d/gomicro.sh")
}

// Flags returns the go-micro flags every program is started with: the
// Consul agent at registryAddr, and server and broker on loopback.
func Flags(registryAddr string) []string {
	return []string{
		"--registry=consul",
		"--registry_address=" + registryAddr,
		"--server_address=127.0.0.1:0",
		"--broker_address=127.0.0.1:0",
	}
}

// start starts program name with args, stopped (SIGTERM: go-micro
// deregisters) when the test ends, its standard error (go-micro logs there)
// in its log. With pipes, the program's standard input and output are
// returned; else its output goes to the log too. ready, if not nil, is
// what Start waits for.
func start(tb testing.TB, name string, pipes bool, args []string, ready func(context.Context, *testenv.Proc) error) (*testenv.Proc, io.WriteCloser, io.Reader) {
	tb.Helper()
	bin, err := BinPath(name)
	testenv.Require(tb, "go-micro test program "+name, err)
	if err := checkNoMDNS(bin); err != nil {
		tb.Fatalf("gomicrotest: %v", err)
	}
	var stdin io.WriteCloser
	var stdout io.Reader
	p := testenv.NewProc(tb, testenv.ProcConfig{
		Name: name, Path: bin, Args: args, Env: cleanEnv(),
		Ready: ready, StartTimeout: StartTimeout,
		StopTimeout: 15 * time.Second, StopAtCleanup: true,
		Prepare: func(cmd *exec.Cmd) (err error) {
			if !pipes {
				return nil
			}
			if stdin, err = cmd.StdinPipe(); err != nil {
				return err
			}
			stdout, err = cmd.StdoutPipe()
			return err
		},
	})
	if err := p.Launch(); err != nil {
		tb.Fatalf("gomicrotest: %v", err)
	}
	// Runs before the cleanup of NewProc stops the program.
	tb.Cleanup(func() { checkNoUDP(tb, p) })
	if ready != nil {
		if err := p.WaitReady(); err != nil {
			tb.Fatalf("gomicrotest: %v", err)
		}
	}
	return p, stdin, stdout
}

// mdnsModule is the multicast DNS library of go-micro's default (mDNS)
// registry. tools/gomicro/go.mod and tools/gomicro/v0/go.mod replace it with
// tools/gomicro/nomdns, which opens no socket: go-micro v1.8.0 lists and
// watches its mDNS registry from package initialisation on, whatever
// registry the flags pick, and the tests use loopback only.
const mdnsModule = "github.com/micro/mdns"

// checkNoMDNS returns an error if the program at bin was built with
// mdnsModule itself rather than tools/gomicro/nomdns (binaries built before
// the replace, or by another build).
func checkNoMDNS(bin string) error {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("reading the build information of %s: %w", bin, err)
	}
	for _, d := range info.Deps {
		if d.Path == mdnsModule && (d.Replace == nil || path.Base(d.Replace.Path) != "nomdns") {
			return fmt.Errorf("%s was built with %s %s, which sends multicast DNS on the network as soon as go-micro starts; rebuild it with: bash .ci/setup.d/gomicro.sh (tools/gomicro/go.mod replaces it with ./nomdns)", bin, mdnsModule, d.Version)
		}
	}
	return nil
}

// checkNoUDP fails the test if the running program p holds a UDP socket:
// go-micro's programs here speak TCP on loopback only (Consul's HTTP API,
// the http transport and broker), and an mDNS listener holds its sockets
// for the program's life.
func checkNoUDP(tb testing.TB, p *testenv.Proc) {
	pid := p.Pid()
	if pid == 0 {
		return // stopped by the test
	}
	socks, err := testenv.UDPSockets(pid)
	if errors.Is(err, fs.ErrNotExist) {
		return // exited, or no /proc here
	}
	if err != nil {
		tb.Errorf("gomicrotest: the UDP sockets of %s: %v", p.Name, err)
		return
	}
	if len(socks) > 0 {
		tb.Errorf("gomicrotest: %s holds UDP sockets %v; go-micro's programs must speak only TCP on loopback (multicast DNS? see the replace in tools/gomicro/go.mod)", p.Name, socks)
	}
}

// cleanEnv is the environment of a program: the test's, without the MICRO_*
// variables that would override the flags given.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !bytes.HasPrefix([]byte(kv), []byte("MICRO_")) {
			env = append(env, kv)
		}
	}
	return env
}

// Service is a running go-micro service program ([Greeter] or [Command]).
type Service struct {
	p    *testenv.Proc
	name string // the service's name
	id   string // its node id
	addr string // the address it listens on
}

var (
	// go-micro v1.8.0: "Transport [http] Listening on ADDR"; v0.10.0:
	// "Listening on ADDR" (and "Broker Listening on ...", not this);
	// v1.16.0 logs with a level: "I | Transport [http] Listening on ADDR".
	listeningRE   = regexp.MustCompile(`(?m)^\S+ \S+ (?:I \| )?(?:Transport \[http\] )?Listening on (\S+)$`)
	registeringRE = regexp.MustCompile(`Registering node: (\S+)`)
)

// Start starts program (Greeter, Command, GreeterV0, GreeterV116 or
// CommandV116) registered as service in the
// Consul agent at registryAddr (its HTTP address), with args added to the
// flags of [Flags], and waits until the agent lists its node. The program is
// stopped when the test ends. If the binary is missing, Start fails the test
// under CI=true and skips it otherwise.
func Start(tb testing.TB, program, service, registryAddr string, args ...string) *Service {
	tb.Helper()
	s := &Service{name: service}
	s.p, _, _ = start(tb, program, false, append(Flags(registryAddr), args...), func(ctx context.Context, p *testenv.Proc) error {
		out := p.Output()
		if m := listeningRE.FindStringSubmatch(out); m != nil && s.addr == "" {
			s.addr = m[1]
		}
		if m := registeringRE.FindStringSubmatch(out); m != nil && s.id == "" {
			s.id = m[1]
		}
		if s.addr == "" || s.id == "" {
			return errors.New("not listening and registering yet")
		}
		ok, err := registered(ctx, registryAddr, service, s.id)
		if err != nil {
			return fmt.Errorf("asking Consul for its node: %w", err)
		}
		if !ok {
			return fmt.Errorf("node %s not in Consul's catalog of %s yet", s.id, service)
		}
		return nil
	})
	return s
}

// registered reports whether the agent's catalog lists node id of service.
func registered(ctx context.Context, agent, service, id string) (bool, error) {
	u := "http://" + agent + "/v1/catalog/service/" + url.PathEscape(service)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, nil // the agent may be busy; ask again
	}
	defer resp.Body.Close()
	var entries []struct{ ServiceID string }
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		return false, fmt.Errorf("GET %s: %s: %w", u, resp.Status, err)
	}
	for _, e := range entries {
		if e.ServiceID == id {
			return true, nil
		}
	}
	return false, nil
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// NodeID returns the id of the service's node in the registry.
func (s *Service) NodeID() string { return s.id }

// Address returns the address the service listens on (127.0.0.1:port).
func (s *Service) Address() string { return s.addr }

// Output returns what the program logged so far.
func (s *Service) Output() string { return s.p.Output() }

// Stop stops the program as an operator would (SIGTERM: go-micro
// deregisters its node and exits) and waits for it; it is killed if it has
// not exited 15 s later.
func (s *Service) Stop() error { return s.p.Stop() }

// Kill kills the program at once (SIGKILL), as a crash would: its node stays
// registered.
func (s *Service) Kill() error {
	s.p.Kill()
	return nil
}

// ClientProcess is a running [Client] program: go-micro's own client,
// reading calls from stdin and answering each on stdout.
type ClientProcess struct {
	p     *testenv.Proc
	mu    sync.Mutex // one call at a time
	stdin io.WriteCloser
	lines chan []byte // stdout, one answer a line; closed at EOF
}

// StartClient starts the client program looking services up in the Consul
// agent at registryAddr, with args added to the flags of [Flags]. It is
// stopped when the test ends. If the binary is missing, StartClient fails
// the test under CI=true and skips it otherwise.
func StartClient(tb testing.TB, registryAddr string, args ...string) *ClientProcess {
	tb.Helper()
	return startClient(tb, Client, registryAddr, args)
}

// StartClientV0 is [StartClient] with go-micro v0.10.0's client, which
// speaks go-micro's old framings only: application/octet-stream (its
// default) and application/protobuf framed as proto-rpc, application/json
// as json-rpc. Its responses are the messages' JSON (encoding/json), and
// GetService is not available.
func StartClientV0(tb testing.TB, registryAddr string, args ...string) *ClientProcess {
	tb.Helper()
	return startClient(tb, ClientV0, registryAddr, args)
}

// StartClientV116 is [StartClient] with go-micro v1.16.0's client, on
// go-plugins v1.5.1's Consul registry.
func StartClientV116(tb testing.TB, registryAddr string, args ...string) *ClientProcess {
	tb.Helper()
	return startClient(tb, ClientV116, registryAddr, args)
}

// StartClientOf starts client program ([Client], [ClientV0] or
// [ClientV116]) as [StartClient] does, for tests that run over go-micro
// versions.
func StartClientOf(tb testing.TB, program, registryAddr string, args ...string) *ClientProcess {
	tb.Helper()
	return startClient(tb, program, registryAddr, args)
}

func startClient(tb testing.TB, program, registryAddr string, args []string) *ClientProcess {
	tb.Helper()
	p, stdin, stdout := start(tb, program, true, append(Flags(registryAddr), args...), nil)
	c := &ClientProcess{p: p, stdin: stdin, lines: make(chan []byte, 1)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if bytes.HasPrefix(sc.Bytes(), []byte("{")) { // answers; not a log line
				c.lines <- bytes.Clone(sc.Bytes())
			}
		}
	}()
	tb.Cleanup(func() { stdin.Close() })
	return c
}

// Error is an error go-micro's client returned, as go-micro's errors.Error.
type Error struct {
	ID     string `json:"id"`
	Code   int32  `json:"code"`
	Detail string `json:"detail"`
	Status string `json:"status"`
}

// Error returns the id, code, status and detail on one line.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.ID, e.Code, e.Status, e.Detail)
}

// Call calls endpoint of service with request (a value encoded to JSON, or
// json.RawMessage) in contentType (application/protobuf, go-micro's
// default, when empty: then the endpoint must be one of the programs'
// protobuf endpoints, Say.*, Command.* or Debug.Health). It returns the
// response as JSON (protobuf responses in protobuf's JSON mapping, with the
// .proto field names), or the error go-micro's client returned as *Error,
// or another error if the program did not answer within CallTimeout.
func (c *ClientProcess) Call(service, endpoint string, request any, contentType string) (json.RawMessage, error) {
	req, err := json.Marshal(request)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(service+" "+endpoint, map[string]any{
		"service": service, "endpoint": endpoint, "request": json.RawMessage(req), "content_type": contentType,
	})
}

// GetService returns the named service as go-micro's registry reads it: the
// JSON of go-micro's []*registry.Service, whose shape microbot's
// registry.Service shares. A service go-micro does not find is an *Error.
func (c *ClientProcess) GetService(name string) (json.RawMessage, error) {
	return c.roundTrip("get service "+name, map[string]any{"get_service": name})
}

// roundTrip sends one line to the client and reads its answer.
func (c *ClientProcess) roundTrip(what string, call map[string]any) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line, err := json.Marshal(call)
	if err != nil {
		return nil, err
	}
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("client: writing the call: %w\n%s", err, c.p.Output())
	}
	select {
	case ans, ok := <-c.lines:
		if !ok {
			<-c.p.Exited()
			return nil, fmt.Errorf("client exited (%v):\n%s", c.p.Err(), c.p.Output())
		}
		var res struct {
			Response json.RawMessage `json:"response"`
			Error    *Error          `json:"error"`
		}
		if err := json.Unmarshal(ans, &res); err != nil {
			return nil, fmt.Errorf("client: bad answer %q: %w", ans, err)
		}
		if res.Error != nil {
			return nil, res.Error
		}
		return res.Response, nil
	case <-time.After(CallTimeout):
		return nil, fmt.Errorf("client: no answer to %s within %v:\n%s", what, CallTimeout, c.p.Output())
	}
}

// Output returns what the client logged so far.
func (c *ClientProcess) Output() string { return c.p.Output() }

// AsError returns err as an *Error if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
