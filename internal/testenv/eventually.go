package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond (every 20 ms) until it returns true, failing the
// test if it is still false after timeout; what says what was awaited.
// Tests wait for conditions this way, with generous timeouts, rather than
// sleeping for a fixed time: a loaded machine is slow, a healthy one is not
// kept waiting.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
