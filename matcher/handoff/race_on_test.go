//go:build race

package handoff_test

// raceEnabled: the race detector slows the simulation about sixfold, so
// the property test runs fewer seeds under it.
const raceEnabled = true
