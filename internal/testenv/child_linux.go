package testenv

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// startCommand sets the child's parent-death signal (prctl PR_SET_PDEATHSIG)
// to SIGKILL.
//
// The kernel sends that signal when the *thread* that forked the child
// exits, not the process. Go threads can exit while the process lives on:
// the runtime ends the thread of a goroutine that returns while locked to
// it with runtime.LockOSThread, and any goroutine may have forked on that
// thread before. The child would then be killed in the middle of a test.
// So the fork happens on a goroutine locked to its thread, and that
// goroutine stays there, locked and blocked in waitid(2) with WNOWAIT,
// until the child has exited: no other goroutine runs on the thread, so
// it cannot be the one that ends, and WNOWAIT leaves the child to the
// caller's cmd.Wait. It costs one thread per running child. The child is
// waited for through a pidfd, which cannot name another process once the
// child is gone (a pid could be reused).
func startCommand(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	pidfd := -1
	if cmd.SysProcAttr.PidFD == nil {
		cmd.SysProcAttr.PidFD = &pidfd
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waitExited(cmd.Process.Pid, pidfd)
	}()
	return <-started
}

// waitExited blocks until the child has exited (or was already waited
// for), without reaping it.
func waitExited(pid, pidfd int) {
	idType, id := unix.P_PIDFD, pidfd
	if pidfd < 0 { // no pidfd (an old kernel, or the caller set its own)
		idType, id = unix.P_PID, pid
	} else {
		defer unix.Close(pidfd)
	}
	for {
		var info unix.Siginfo
		err := unix.Waitid(idType, id, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
