// Package testenv holds helpers for tests that need real parts of the
// environment (a Consul agent, a prosody server, protoc).
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
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

// FindUp returns the nearest directory, from the working directory up to
// the file system's root, that holds rel (e.g. "tools/consul/go.mod"): how
// tests find what .ci/setup.d scripts built into the repository.
func FindUp(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, rel)); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no %s above the working directory %s", rel, wd)
		}
		d = parent
	}
}

// Executable returns an error saying why p is not an executable file, if it
// is not.
func Executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
