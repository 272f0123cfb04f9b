package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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
)

// FreePorts returns n distinct TCP ports free on 127.0.0.1 a moment ago.
// They are drawn below the kernel's ephemeral range (32768 and up), so
// that outgoing connections do not take one while a stopped server waits
// to be started again on it.
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	return freePorts(tb, n, false)
}

// FreeTCPUDPPorts is [FreePorts] for servers that listen on both TCP and
// UDP on each port (Consul's Serf).
func FreeTCPUDPPorts(tb testing.TB, n int) []int {
	tb.Helper()
	return freePorts(tb, n, true)
}

func freePorts(tb testing.TB, n int, udp bool) []int {
	tb.Helper()
	var ports []int
	var held []io.Closer
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for try := 0; len(ports) < n && try < 1000; try++ {
		port := 20000 + rand.IntN(12000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				_ = l.Close()
				continue
			}
			held = append(held, u)
		}
		held = append(held, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		tb.Fatalf("testenv: no %d free loopback ports found", n)
	}
	return ports
}

// ProcConfig says how [Proc] runs a real process for a test (a server:
// nats-server, prosody, a Consul agent; or a program: a go-micro service)
// and when it is ready.
type ProcConfig struct {
	// Name names the process in messages ("nats-server") and, by default,
	// its log file.
	Name string
	// Path is the program, Args its arguments.
	Path string
	Args []string
	// Env is the process's environment; nil is the test process's.
	Env []string
	// Dir is the process's working directory, where its log is kept
	// (default: a new temporary directory).
	Dir string
	// LogFile is the file in Dir the process's standard output and error
	// are appended to (default Name.log, with any "/" made "-").
	LogFile string
	// ExtraLogs are files in Dir the program writes logs to itself; Logs
	// shows them after the output.
	ExtraLogs []string

	// Addrs are TCP addresses the process must accept connections on to be
	// ready.
	Addrs []string
	// Ready, if set, is asked (once every Addrs accepts) until it returns
	// nil: then the process is ready. Its last error says why not. It may
	// read p's output but not start or stop p.
	Ready func(ctx context.Context, p *Proc) error
	// StartTimeout bounds the wait for readiness (default 30 s).
	StartTimeout time.Duration
	// Poll is the time between two readiness checks (default 20 ms).
	Poll time.Duration

	// Prepare, if set, is called with the command before each start (to
	// take pipes, for example). Stdout and Stderr it leaves nil go to the
	// log file.
	Prepare func(cmd *exec.Cmd) error
	// StopTimeout is how long Stop waits for the process to exit after
	// SIGTERM before it kills it (default 10 s).
	StopTimeout time.Duration
	// StopAtCleanup makes the test's cleanup stop the process gracefully
	// (Stop) rather than kill it: for a program that should deregister.
	StopAtCleanup bool
}

// Proc is a real process for a test, run as [ProcConfig] says: started
// through [StartCommand] (it dies with the test process) in a process
// group of its own, its output kept in a log file, ready once it accepts
// TCP connections on its addresses and its Ready condition holds, within a
// deadline. It can be stopped (SIGTERM, then SIGKILL after a timeout),
// killed, paused and started again; the test's cleanup kills it (or stops
// it, with StopAtCleanup) and prints its logs if the test failed.
type Proc struct {
	// Name names the process in messages ("nats-server").
	Name string
	// Dir is the process's directory (configuration, data, log).
	Dir string

	tb  testing.TB
	cfg ProcConfig

	mu  sync.Mutex
	run *procRun // the current run; nil when stopped or never started
	// last is the latest run, kept after it stopped, for Exited and Err.
	last *procRun
}

// procRun is one run of the process.
type procRun struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	err    error         // cmd.Wait's, valid once exited is closed
}

// NewProc prepares a process as cfg says without starting it (Launch,
// Start); the test's cleanup ends it.
func NewProc(tb testing.TB, cfg ProcConfig) *Proc {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	if cfg.LogFile == "" {
		cfg.LogFile = strings.ReplaceAll(cfg.Name, "/", "-") + ".log"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	p := &Proc{Name: cfg.Name, Dir: cfg.Dir, tb: tb, cfg: cfg}
	tb.Cleanup(func() {
		if cfg.StopAtCleanup {
			_ = p.Stop()
		} else {
			p.Kill()
		}
		if tb.Failed() {
			tb.Logf("%s's log:\n%s", cfg.Name, p.Logs())
		}
	})
	return p
}

// StartProc starts a process as cfg says and waits until it is ready
// (see [Proc.Start]).
func StartProc(tb testing.TB, cfg ProcConfig) *Proc {
	tb.Helper()
	p := NewProc(tb, cfg)
	p.Start()
	return p
}

// StartWithConfig starts a server that reads its configuration from a
// file given with -c (nats-server, mosquitto): in a temporary directory,
// it writes the file name with the text conf returns for the free loopback
// address and port the server is to listen on, starts bin -c FILE, and
// waits until it listens there. It returns the process and the address.
func StartWithConfig(tb testing.TB, name, bin, file string, conf func(addr string, port int) string) (*Proc, string) {
	tb.Helper()
	dir := tb.TempDir()
	port := FreePorts(tb, 1)[0]
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(conf(addr, port)), 0o600); err != nil {
		tb.Fatal(err)
	}
	return StartProc(tb, ProcConfig{Name: name, Dir: dir, Path: bin, Args: []string{"-c", path}, Addrs: []string{addr}}), addr
}

// LogPath is the file the process's output goes to.
func (p *Proc) LogPath() string { return filepath.Join(p.Dir, p.cfg.LogFile) }

// Start starts the (stopped) process and waits until it is ready; it
// fails the test if the process cannot start, exits, or is not ready
// within the start timeout.
func (p *Proc) Start() {
	p.tb.Helper()
	if err := p.Launch(); err != nil {
		p.tb.Fatal(err)
	}
	if err := p.WaitReady(); err != nil {
		p.tb.Fatal(err)
	}
}

// Launch starts the (stopped) process without waiting for it to be ready.
func (p *Proc) Launch() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		return fmt.Errorf("testenv: %s: already running", p.Name)
	}
	out, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("testenv: %s: %w", p.Name, err)
	}
	defer out.Close()
	fmt.Fprintf(out, "==== testenv: starting %s %s at %s\n", p.cfg.Path, strings.Join(p.cfg.Args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Dir = p.Dir
	cmd.Env = p.cfg.Env
	if p.cfg.Prepare != nil {
		if err := p.cfg.Prepare(cmd); err != nil {
			return fmt.Errorf("testenv: %s: %w", p.Name, err)
		}
	}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := StartCommand(cmd); err != nil {
		return fmt.Errorf("testenv: starting %s: %w", p.cfg.Path, err)
	}
	r := &procRun{cmd: cmd, exited: make(chan struct{})}
	go func() { r.err = cmd.Wait(); close(r.exited) }()
	p.run, p.last = r, r
	return nil
}

// WaitReady waits until the launched process accepts connections on its
// addresses and its Ready condition holds. If it exits first, or is not
// ready within the start timeout, WaitReady kills it and returns an error
// holding the end of its logs.
func (p *Proc) WaitReady() error {
	p.mu.Lock()
	r := p.run
	p.mu.Unlock()
	if r == nil {
		return fmt.Errorf("testenv: %s: not started", p.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
	defer cancel()
	for {
		last := p.check(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-r.exited:
			p.Kill()
			return fmt.Errorf("testenv: %s exited at start-up (%v):\n%s", p.Name, r.err, p.Logs())
		case <-ctx.Done():
			p.Kill()
			return fmt.Errorf("testenv: %s not ready within %v: %v\n%s", p.Name, p.cfg.StartTimeout, last, p.Logs())
		case <-time.After(p.cfg.Poll):
		}
	}
}

// check returns why the process is not ready, or nil.
func (p *Proc) check(ctx context.Context) error {
	for _, addr := range p.cfg.Addrs {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	if p.cfg.Ready != nil {
		return p.cfg.Ready(ctx, p)
	}
	return nil
}

// Stop stops the process gracefully (SIGCONT, should it be paused, then
// SIGTERM) and waits for it to exit; after the stop timeout it kills it
// and returns an error saying so. Stopping a stopped process does nothing.
func (p *Proc) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.run
	if r == nil {
		return nil
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGCONT)
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		p.run = nil
		return nil
	case <-time.After(p.cfg.StopTimeout):
	}
	p.killLocked()
	err := fmt.Errorf("testenv: %s did not exit within %v of SIGTERM; killed", p.Name, p.cfg.StopTimeout)
	p.tb.Log(err)
	return err
}

// Kill kills the process and its process group at once (SIGKILL), as a
// crash would, and waits for it to exit.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
}

func (p *Proc) killLocked() {
	r := p.run
	if r == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
	p.run = nil
}

// Restart stops the process and starts it again as it was (same
// addresses), waiting until it is ready.
func (p *Proc) Restart() {
	p.tb.Helper()
	_ = p.Stop()
	p.Start()
}

// Pause freezes the process (SIGSTOP): connections stay open, nothing
// answers. It returns once every thread of the process is stopped (a
// signal is delivered asynchronously: a thread on another CPU may run a
// moment longer), or after 5 s.
func (p *Proc) Pause() {
	p.signal(syscall.SIGSTOP)
	if pid := p.Pid(); pid != 0 {
		waitStopped(pid, 5*time.Second)
	}
}

// waitStopped waits, up to d, until every thread of pid is stopped, as
// /proc says (state T); without /proc it returns at once.
func waitStopped(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return
		}
		stopped := true
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
			if err != nil {
				continue // the thread is gone
			}
			// pid (comm) state ...: comm may hold spaces and parentheses.
			i := strings.LastIndexByte(string(b), ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume unfreezes a paused process (SIGCONT).
func (p *Proc) Resume() { p.signal(syscall.SIGCONT) }

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		_ = p.run.cmd.Process.Signal(sig)
	}
}

// Pid returns the process id of the running process, or 0 when it is not
// running.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return 0
	}
	return p.run.cmd.Process.Pid
}

// Running reports whether the process was started and not stopped or
// killed since.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run != nil
}

// Exited returns a channel closed when the latest run of the process has
// exited (nil if it never started).
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		return nil
	}
	return p.last.exited
}

// Err returns how the latest run ended (exec.Cmd.Wait's error); valid once
// Exited is closed.
func (p *Proc) Err() error {
	p.mu.Lock()
	r := p.last
	p.mu.Unlock()
	if r == nil {
		return nil
	}
	select {
	case <-r.exited:
		return r.err
	default:
		return nil
	}
}

// Output returns everything the process wrote to its log file (with a
// "==== testenv: starting" line before each run).
func (p *Proc) Output() string {
	data, err := os.ReadFile(p.LogPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err.Error()
	}
	return string(data)
}

// Logs returns the last 16 KiB of the process's output, followed by the
// last 16 KiB of each of its other log files, for failure messages.
func (p *Proc) Logs() string {
	if len(p.cfg.ExtraLogs) == 0 {
		return tail(p.LogPath())
	}
	var b strings.Builder
	for _, f := range append([]string{p.cfg.LogFile}, p.cfg.ExtraLogs...) {
		fmt.Fprintf(&b, "--- %s ---\n%s\n", f, tail(filepath.Join(p.Dir, f)))
	}
	return b.String()
}

// tail returns the last 16 KiB of a file.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 16<<10 {
		data = data[len(data)-16<<10:]
	}
	return string(data)
}

// LookPath finds a real part's binary: at the path in the environment
// variable env if it is set, else name on PATH or in the extra directories
// (Debian puts servers in /usr/sbin, which a user's PATH may lack). The
// error says what is missing and how to install it.
func LookPath(name, env, install string, extra ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return path, nil
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, d := range extra {
		path := filepath.Join(d, name)
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", errors.New(name + " not found on PATH (" + install + ", or set " + env + ")")
}

// Built finds a program a .ci/setup.d script builds into the repository
// (it is gitignored): rel (e.g. "tools/consul/consul-agent") below the
// nearest directory, from the working directory up, that holds marker
// (e.g. "tools/consul/go.mod"). The error names env, the variable that
// would override the place, and the script that builds the program.
func Built(marker, rel, env, script string) (string, error) {
	root, err := FindUp(marker)
	if err != nil {
		return "", fmt.Errorf("%w, and %s unset", err, env)
	}
	p := filepath.Join(root, rel)
	if err := Executable(p); err != nil {
		return "", fmt.Errorf("%w (build it with: bash %s)", err, script)
	}
	return p, nil
}
