package rpc

import "time"

// SetWorkerIdle sets how long idle handler goroutines wait, for a test.
func SetWorkerIdle(d time.Duration) (restore func()) {
	old := workerIdle
	workerIdle = d
	return func() { workerIdle = old }
}

// testMeta is the default metadata bound, for codec tests.
var testMeta = metaLimits{entries: DefaultMaxMetadata, bytes: DefaultMaxMetadataBytes}

// SetLoopIdle sets how long an idle peer's reader waits before it lets its
// goroutine go, for a test.
func SetLoopIdle(d time.Duration) (restore func()) {
	old := loopIdle
	loopIdle = d
	return func() { loopIdle = old }
}
