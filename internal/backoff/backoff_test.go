package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	tests := []struct {
		min, max time.Duration
		fails    int
		want     time.Duration // the wait before jitter
	}{
		{time.Second, time.Minute, 0, time.Second},
		{time.Second, time.Minute, 1, 2 * time.Second},
		{time.Second, time.Minute, 5, 32 * time.Second},
		{time.Second, time.Minute, 6, time.Minute},
		{time.Second, time.Minute, 1000, time.Minute},
		{0, time.Minute, 3, time.Millisecond},              // no minimum: the floor
		{time.Second, time.Second / 2, 0, time.Second / 2}, // max below min: max
	}
	for _, tt := range tests {
		for range 100 {
			got := Delay(tt.min, tt.max, tt.fails)
			if got < tt.want/2 || got > tt.want {
				t.Fatalf("Delay(%v, %v, %d) = %v, want between %v and %v", tt.min, tt.max, tt.fails, got, tt.want/2, tt.want)
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for i, want := range []time.Duration{10, 20, 40, 80, 80} {
		want *= time.Millisecond
		if d := b.Next(); d < want/2 || d > want {
			t.Fatalf("wait %d = %v, want between %v and %v", i, d, want/2, want)
		}
	}
	if b.Failures() != 5 {
		t.Errorf("Failures = %d, want 5", b.Failures())
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond || b.Failures() != 1 {
		t.Errorf("after Reset: wait %v, %d failures; want at most 10ms, 1", d, b.Failures())
	}
	var zero Backoff
	if d := zero.Next(); d <= 0 || d > time.Millisecond {
		t.Errorf("zero Backoff waits %v, want the floor", d)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep without a cancel reported ctx ended")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) { // returns at once: the test would time out otherwise
		t.Error("Sleep on an ended ctx reported the whole wait")
	}
}
