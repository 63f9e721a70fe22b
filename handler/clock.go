package handler

import "time"

// epoch anchors the call timings of [Logging] and [Instrument] to the
// monotonic clock: reading the time as a duration since epoch skips the
// wall clock, which costs as much again on some machines.
var epoch = time.Now()

// now returns the monotonic time since epoch.
func now() time.Duration { return time.Since(epoch) }
