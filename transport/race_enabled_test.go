//go:build race

package transport_test

// raceEnabled: the race detector slows some tests down past their point.
const raceEnabled = true
