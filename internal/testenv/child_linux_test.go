package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// roleEnv tells the re-executed test binary which part it plays in
// TestStartCommandDiesWithParent.
const roleEnv = "MICROBOT_TESTENV_CHILD_ROLE"

// A child started with StartCommand lives on when the thread that started
// it ends, and dies when its parent process is killed. The parent is this
// test binary run again ("parent" role): it starts the child (the binary
// once more, "child" role, which only sleeps) from a goroutine that locks
// its thread and returns without unlocking it, so the runtime ends that
// thread; then it says the child's pid and sleeps until the test kills it.
func TestStartCommandDiesWithParent(t *testing.T) {
	switch os.Getenv(roleEnv) {
	case "child":
		time.Sleep(time.Hour)
		return
	case "parent":
		parentRole()
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(self, "-test.run=^TestStartCommandDiesWithParent$", "-test.timeout=1h")
	parent.Env = append(os.Environ(), roleEnv+"=parent")
	parent.Stderr = os.Stderr
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Not through StartCommand: this parent must not die with a thread.
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Process.Kill(); parent.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "child ") {
				lines <- l
			}
		}
		close(lines)
	}()
	var child int
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the parent ended without starting its child")
		}
		if child, err = strconv.Atoi(strings.TrimPrefix(l, "child ")); err != nil {
			t.Fatalf("parent said %q", l)
		}
	case <-time.After(time.Minute):
		t.Fatal("the parent did not start its child within a minute")
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	// The thread that called StartCommand is gone (the parent waited for
	// that before it spoke); the child must live on.
	if !alive(child) {
		t.Fatal("the child died with the thread that started it")
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	parent.Wait() //nolint:errcheck // killed
	Eventually(t, 30*time.Second, "the child dies with its parent", func() bool { return !alive(child) })
}

// parentRole starts the child on a thread that then ends, waits until the
// thread is gone, prints "child <pid>" and sleeps.
func parentRole() {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	type started struct {
		pid, tid int
		err      error
	}
	ch := make(chan started)
	var try func()
	try = func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if unix.Gettid() == os.Getpid() {
			// The main thread is never ended, only parked: stay on it,
			// so that the next try runs on another thread.
			go try()
			select {}
		}
		cmd := exec.Command(self, "-test.run=^TestStartCommandDiesWithParent$", "-test.timeout=1h")
		cmd.Env = append(os.Environ(), roleEnv+"=child")
		err := StartCommand(cmd)
		s := started{tid: unix.Gettid(), err: err}
		if err == nil {
			s.pid = cmd.Process.Pid
		}
		ch <- s
	}
	go try()
	s := <-ch
	if s.err != nil {
		panic(s.err)
	}
	task := fmt.Sprintf("/proc/self/task/%d", s.tid)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(task); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			panic("the locked thread did not end")
		}
	}
	fmt.Printf("child %d\n", s.pid)
	time.Sleep(time.Hour)
}

// alive reports whether process pid exists and is no zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
