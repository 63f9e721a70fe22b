//go:build race

package rpc_test

// raceEnabled: under the race detector sync.Pool drops buffers at random,
// so tests of buffer reuse have nothing to measure.
const raceEnabled = true
