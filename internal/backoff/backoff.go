// Package backoff is microbot's one capped exponential backoff with jitter,
// and the wait a context cuts short. Every loop that retries something that
// failed (an input's connection, a registry watch, a command's help) waits
// with it, so a broken dependency gets ever slower retries, never a storm,
// and many processes retrying at once spread out.
//
//	bo := backoff.Backoff{Min: time.Second, Max: time.Minute}
//	for {
//		if err := connect(ctx); err == nil {
//			bo.Reset()
//			...
//		}
//		if !backoff.Sleep(ctx, bo.Next()) {
//			return // ctx ended
//		}
//	}
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// floor is the shortest wait: a zero Min would retry in a hot loop.
const floor = time.Millisecond

// Backoff counts failures in a row and gives the wait before the next try:
// Min doubled at each failure up to Max, with jitter. The zero value waits
// the floor of a millisecond. It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	fails    int
}

// Next counts a failure and returns the wait before the next try:
// Delay(Min, Max, failures before this one).
func (b *Backoff) Next() time.Duration {
	d := Delay(b.Min, b.Max, b.fails)
	b.fails = min(b.fails+1, 64)
	return d
}

// Reset starts over from Min, after a success.
func (b *Backoff) Reset() { b.fails = 0 }

// Failures returns how many failures Next has counted since Reset.
func (b *Backoff) Failures() int { return b.fails }

// Delay returns the wait after fails failures in a row: min doubled fails
// times, at most max (and at least a millisecond), between half and all of
// it at random.
func Delay(min, max time.Duration, fails int) time.Duration {
	d := min
	for i := 0; i < fails && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return Jitter(d)
}

// Jitter returns a random duration between half d and d (at least a
// millisecond), so that retries of many processes spread out.
func Jitter(d time.Duration) time.Duration {
	d = max(d, floor)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx is done; it reports whether the whole wait
// passed (false: ctx ended first).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
