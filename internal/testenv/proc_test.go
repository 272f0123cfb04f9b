package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procRoleEnv tells the re-executed test binary which program it plays in
// the Proc tests.
const procRoleEnv = "MICROBOT_TESTENV_PROC_ROLE"

// TestProcProgram is the program the Proc tests run (this test binary
// again): "listen ADDR" says hello and listens until SIGTERM; "exit" says
// why and exits 3; "stubborn" ignores SIGTERM. Run directly, it does
// nothing.
func TestProcProgram(t *testing.T) {
	role := os.Getenv(procRoleEnv)
	switch {
	case role == "":
		return
	case strings.HasPrefix(role, "listen "):
		signal.Ignore(syscall.SIGHUP)
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		l, err := net.Listen("tcp", strings.TrimPrefix(role, "listen "))
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println("hello from the program")
		fmt.Fprintln(os.Stderr, "ready")
		<-term
		l.Close()
		fmt.Println("stopped by SIGTERM")
		os.Exit(0)
	case role == "exit":
		fmt.Fprintln(os.Stderr, "a bad configuration")
		os.Exit(3)
	case role == "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		time.Sleep(time.Hour)
	}
}

// program is the configuration of the test program in role.
func program(t *testing.T, role string) ProcConfig {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return ProcConfig{
		Name: "program", Path: self,
		Args: []string{"-test.run=^TestProcProgram$", "-test.timeout=1h"},
		Env:  append(os.Environ(), procRoleEnv+"="+role),
	}
}

// A Proc is ready when its port accepts and its condition holds, keeps its
// output, stops gracefully, and starts again on the same address.
func TestProcStartStopRestart(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", FreePorts(t, 1)[0])
	cfg := program(t, "listen "+addr)
	cfg.Addrs = []string{addr}
	asked := 0
	cfg.Ready = func(_ context.Context, p *Proc) error {
		asked++
		if !strings.Contains(p.Output(), "ready") {
			return errors.New("not ready")
		}
		return nil
	}
	p := StartProc(t, cfg)
	if !p.Running() || asked == 0 {
		t.Fatalf("Running = %v, Ready asked %d times", p.Running(), asked)
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("not listening after Start: %v", err)
	} else {
		c.Close()
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("Running after Stop")
	}
	if err := p.Err(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	out := p.Output()
	for _, want := range []string{"==== testenv: starting", "hello from the program", "ready", "stopped by SIGTERM"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	p.Restart()
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("not listening after Restart: %v", err)
	} else {
		c.Close()
	}
	if n := strings.Count(p.Output(), "hello from the program"); n != 2 {
		t.Errorf("two runs said hello %d times", n)
	}
	p.Kill()
	select {
	case <-p.Exited():
	default:
		t.Fatal("Kill returned before the process exited")
	}
}

// WaitReady fails at once, with the process's output, when the process
// exits at start-up; and kills a process not ready in time.
func TestProcNotReady(t *testing.T) {
	t.Run("exits", func(t *testing.T) {
		cfg := program(t, "exit")
		cfg.Addrs = []string{fmt.Sprintf("127.0.0.1:%d", FreePorts(t, 1)[0])}
		cfg.StartTimeout = time.Hour
		p := NewProc(t, cfg)
		if err := p.Launch(); err != nil {
			t.Fatal(err)
		}
		err := p.WaitReady()
		if err == nil || !strings.Contains(err.Error(), "exited at start-up (exit status 3)") || !strings.Contains(err.Error(), "a bad configuration") {
			t.Fatalf("WaitReady = %v", err)
		}
		if p.Running() {
			t.Error("Running after it exited")
		}
	})
	t.Run("times out", func(t *testing.T) {
		cfg := program(t, "stubborn")
		cfg.Ready = func(context.Context, *Proc) error { return errors.New("never") }
		cfg.StartTimeout = 200 * time.Millisecond
		p := NewProc(t, cfg)
		if err := p.Launch(); err != nil {
			t.Fatal(err)
		}
		err := p.WaitReady()
		if err == nil || !strings.Contains(err.Error(), "not ready within 200ms: never") {
			t.Fatalf("WaitReady = %v", err)
		}
		select {
		case <-p.Exited():
		default:
			t.Fatal("the process not ready in time still runs")
		}
	})
}

// Stop kills a process that ignores SIGTERM once the stop timeout is
// over, and says so.
func TestProcStopKillsStubborn(t *testing.T) {
	cfg := program(t, "stubborn")
	cfg.Ready = func(_ context.Context, p *Proc) error {
		if !strings.Contains(p.Output(), "ignoring SIGTERM") {
			return errors.New("not yet ignoring SIGTERM")
		}
		return nil
	}
	cfg.StartTimeout = time.Minute
	cfg.StopTimeout = 100 * time.Millisecond
	p := StartProc(t, cfg)
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "did not exit within 100ms of SIGTERM; killed") {
		t.Fatalf("Stop = %v", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("still running after Stop")
	}
}
