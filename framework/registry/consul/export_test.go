package consul

import "time"

// SetFallbackPause sets how long r uses stale answers without trying a
// consistent read after one failed, and ends a pause under way.
func SetFallbackPause(r *Registry, d time.Duration) {
	r.reads.pause = d
	r.reads.pauseUntil.Store(0)
}

// WaitConfirmed waits until r confirms no registration any more (see
// confirm.go), for up to d, and reports whether it does not.
func WaitConfirmed(r *Registry, d time.Duration) bool {
	deadline := time.After(d)
	for {
		r.mu.Lock()
		var c *confirmation
		for _, c = range r.confirms {
			break
		}
		r.mu.Unlock()
		if c == nil {
			return true
		}
		select {
		case <-c.done:
		case <-deadline:
			return false
		}
	}
}
