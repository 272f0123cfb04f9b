package consul

import "time"

// SetFallbackPause sets how long r uses stale answers without trying a
// consistent read after one failed, and ends a pause under way.
func SetFallbackPause(r *Registry, d time.Duration) {
	r.reads.pause = d
	r.reads.pauseUntil.Store(0)
}
