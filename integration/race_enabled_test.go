//go:build race

package integration

// raceEnabled: the race detector slows some tests down past their point.
const raceEnabled = true
