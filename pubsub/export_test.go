package pubsub

// AtOnceFanouts returns how many fan-outs were written at once (see fanout).
func AtOnceFanouts() int64 { return atOnceFanouts.Load() }
