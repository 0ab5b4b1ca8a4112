//go:build !race

package router_test

// raceEnabled: the race detector slows cluster tests about threefold.
const raceEnabled = false
