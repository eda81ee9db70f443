//go:build !race

package relayproc

// RaceEnabled reports whether this binary was built with -race; tests pass it to Builder so
// the relay they run has the race detector when they do.
const RaceEnabled = false
