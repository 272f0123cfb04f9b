package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/microbot/microbot/internal/testenv"
)

// TestRun runs every system briefly against real servers: each delivers
// every message (a lost one fails the run) and has its row.
func TestRun(t *testing.T) {
	cfg := defaultConfig()
	cfg.Messages, cfg.Latency, cfg.Rounds, cfg.Window = 2000, 50, 2, 256
	for _, bin := range []string{"nats-server", "mosquitto"} {
		_, err := findBin("", bin)
		testenv.Require(t, bin, err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	rows := 0
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 9 && f[0] != "system" {
			rows++
			if f[6] != "4000" || f[7] != "0" {
				t.Errorf("%s delivered %s and lost %s of 4000: %q", f[0], f[6], f[7], line)
			}
		}
	}
	if rows != len(cfg.Systems) {
		t.Errorf("want %d rows, got %d:\n%s", len(cfg.Systems), rows, out.String())
	}
	t.Log("\n" + out.String())
}
