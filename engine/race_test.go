//go:build race

package engine_test

// raceEnabled shortens the long tests under the race detector.
const raceEnabled = true
