// Package testenv holds helpers for tests that need real parts of the
// environment (a Consul agent, a prosody server, protoc).
package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where every real
// part must be present.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test when a real part it needs is missing (err != nil):
// under CI it fails, so a missing install step cannot pass unnoticed;
// elsewhere it skips with the reason.
func Require(tb testing.TB, part string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if InCI() {
		tb.Fatalf("%s is required under CI=true: %v", part, err)
	}
	tb.Skipf("%s not available: %v (run .ci/setup to install it)", part, err)
}
