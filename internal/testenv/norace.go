//go:build !race

package testenv

// RaceEnabled reports whether the race detector is on in this build.
const RaceEnabled = false
