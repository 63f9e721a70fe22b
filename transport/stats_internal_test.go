package transport

import "testing"

// BenchmarkCounts is what counting costs per message, on each side: the
// reader's received and the writer's sent (go test -run '^$' -bench
// Counts ./transport).
func BenchmarkCounts(b *testing.B) {
	var k counts
	b.Run("received", func(b *testing.B) {
		for b.Loop() {
			k.received(64, true)
		}
	})
	b.Run("sent", func(b *testing.B) {
		for b.Loop() {
			k.sent(64, true)
		}
	})
	b.Run("both-concurrently", func(b *testing.B) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range b.N {
				k.sent(64, true)
			}
		}()
		for range b.N {
			k.received(64, true)
		}
		<-done
	})
}
