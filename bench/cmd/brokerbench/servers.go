package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// server is a broker server the bench started.
type server struct {
	name string
	addr string
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// findBin returns the path of a server binary: the flag's value, or name
// on PATH or in /usr/sbin (Debian's place for both servers).
func findBin(flagValue, name string) (string, error) {
	if flagValue != "" {
		return exec.LookPath(flagValue)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found (apt-get install %s, or bash .ci/setup.d/%s.sh)", name, name, map[string]string{"nats-server": "nats", "mosquitto": "mosquitto"}[name])
}

// freeAddr returns a loopback address free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startNATS starts nats-server on a free loopback port.
func startNATS(bin string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "brokerbench-nats-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: %q\n", addr)), 0o600); err != nil {
		return nil, err
	}
	return startServer("nats-server", bin, dir, addr, "-c", conf)
}

// startMosquitto starts mosquitto on a free loopback port.
func startMosquitto(bin string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "brokerbench-mosquitto-")
	if err != nil {
		return nil, err
	}
	runAs := ""
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		runAs = "user root\n"
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := runAs + "listener " + port + " 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nmax_queued_messages 100000\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return startServer("mosquitto", bin, dir, addr, "-c", conf)
}

func startServer(name, bin, dir, addr string, args ...string) (*server, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, addr: addr, cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			return nil, fmt.Errorf("%s exited at start-up: %s", name, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New(name + " did not listen within 30s")
		}
	}
}

// stop kills the server and removes its directory.
func (s *server) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	os.RemoveAll(s.dir)
}

func itoa(n int) string { return strconv.Itoa(n) }
