package testenv

import (
	"errors"
	"fmt"
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
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for try := 0; len(ports) < n && try < 1000; try++ {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		tb.Fatalf("testenv: no %d free loopback ports found", n)
	}
	return ports
}

// Proc is a real server process for a test (nats-server, mosquitto...):
// started from a command in a directory of its own, its output kept in a
// log file, and ready once it accepts TCP connections on its addresses.
// It can be stopped, killed, paused and started again on the same
// addresses; it is killed when the test ends, and its log is printed if the
// test failed.
type Proc struct {
	// Name names the process in messages ("nats-server").
	Name string
	// Dir is the process's directory (configuration, data, log).
	Dir string

	tb    testing.TB
	path  string
	args  []string
	addrs []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// procStartTimeout bounds the wait for a process to listen.
const procStartTimeout = 30 * time.Second

// StartProc starts path with args in dir and waits until every one of
// addrs accepts TCP connections.
func StartProc(tb testing.TB, name, dir, path string, args []string, addrs ...string) *Proc {
	tb.Helper()
	p := &Proc{Name: name, Dir: dir, tb: tb, path: path, args: args, addrs: addrs}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("%s's log:\n%s", name, p.Logs())
		}
	})
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
	return StartProc(tb, name, dir, bin, []string{"-c", path}, addr), addr
}

// LogPath is the file the process's output goes to.
func (p *Proc) LogPath() string { return filepath.Join(p.Dir, p.Name+".log") }

// Start starts the (stopped) process and waits until it listens.
func (p *Proc) Start() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.tb.Fatalf("testenv: %s: Start: already running", p.Name)
	}
	out, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.tb.Fatal(err)
	}
	defer out.Close()
	fmt.Fprintf(out, "==== testenv: starting %s %s at %s\n", p.path, strings.Join(p.args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := StartCommand(cmd); err != nil {
		p.tb.Fatalf("testenv: starting %s: %v", p.path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	deadline := time.Now().Add(procStartTimeout)
	for _, addr := range p.addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-exited:
				p.cmd = nil
				p.tb.Fatalf("testenv: %s exited at start-up:\n%s", p.Name, p.logs())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				p.killLocked()
				p.tb.Fatalf("testenv: %s did not listen on %s within %v:\n%s", p.Name, addr, procStartTimeout, p.logs())
			}
		}
	}
}

// Stop stops the process gracefully (SIGTERM), killing it if it takes
// longer than 10 s.
func (p *Proc) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		p.cmd = nil
	case <-time.After(10 * time.Second):
		p.tb.Logf("testenv: %s ignored SIGTERM for 10s; killing it", p.Name)
		p.killLocked()
	}
}

// Kill kills the process at once (SIGKILL), as a crash would.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
}

func (p *Proc) killLocked() {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	p.cmd = nil
}

// Restart stops the process and starts it again on the same addresses.
func (p *Proc) Restart() {
	p.tb.Helper()
	p.Stop()
	p.Start()
}

// Pause freezes the process (SIGSTOP): connections stay open, nothing
// answers.
func (p *Proc) Pause() { p.signal(syscall.SIGSTOP) }

// Resume unfreezes a paused process (SIGCONT).
func (p *Proc) Resume() { p.signal(syscall.SIGCONT) }

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Running reports whether the process is up.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Logs returns the last 16 KiB of the process's output.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs()
}

func (p *Proc) logs() string {
	data, err := os.ReadFile(p.LogPath())
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
