//go:build !linux

package testenv

import "os/exec"

// startCommand is cmd.Start: only Linux has a parent-death signal.
func startCommand(cmd *exec.Cmd) error { return cmd.Start() }
