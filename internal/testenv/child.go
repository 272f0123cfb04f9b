package testenv

import "os/exec"

// StartCommand starts cmd as cmd.Start does, so that the child dies with
// the test process: on Linux it is sent SIGKILL when the test process ends,
// however it ends (a test binary killed by `go test`'s timeout, by Ctrl-C,
// or by SIGPIPE in `go test -v | head`), where it would otherwise keep
// running (a Consul agent, prosody, a go-micro program, the bot). Every
// helper that starts a process for a test starts it through here. Wait for
// cmd as usual. Elsewhere it is cmd.Start.
//
// The child's own children are not covered: a helper whose program
// daemonizes keeps it in the foreground instead (tmuxtest runs tmux -D).
func StartCommand(cmd *exec.Cmd) error { return startCommand(cmd) }
