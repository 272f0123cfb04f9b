package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun runs every case briefly: both systems answer correctly (a wrong
// echo fails the run) and the table has a row per concurrency.
func TestRun(t *testing.T) {
	for _, discovery := range []bool{false, true} {
		cfg := defaultConfig()
		cfg.Duration, cfg.Warmup, cfg.Rounds, cfg.Concurrency = 50*time.Millisecond, 10*time.Millisecond, 2, []int{1, 4}
		cfg.Discovery = discovery
		var out bytes.Buffer
		if err := run(context.Background(), cfg, &out); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		var rows int
		for _, line := range strings.Split(out.String(), "\n") {
			f := strings.Fields(line)
			if len(f) == 9 && (f[0] == "1" || f[0] == "4") {
				rows++
				if f[1] == "0" || f[2] == "0" {
					t.Errorf("a system made no call: %q", line)
				}
			}
		}
		if rows != 2 {
			t.Errorf("want 2 rows, got %d:\n%s", rows, out.String())
		}
	}
}
