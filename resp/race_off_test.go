//go:build !race

package resp_test

// raceEnabled: the race detector is on (heavy tests run shorter).
const raceEnabled = false
