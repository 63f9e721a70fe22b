package natsbroker

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// FuzzDecodeStored feeds decodeStored the headers and data a message from
// NATS may carry, a batch of publications among them: it must never panic,
// accept only a positive offset, and give consecutive offsets.
func FuzzDecodeStored(f *testing.F) {
	batch, _ := encodeBatch([]*pendingPub{{data: []byte(`"a"`), publisher: "p1"}, {data: []byte(`{"b":1}`)}})
	f.Add("1", "abcd1234", "100", "60000", "peer-1", "", []byte(`"x"`))
	f.Add("", "", "", "", "", "", []byte{})
	f.Add("-1", "e", "x", "-5", "", "", []byte("{"))
	f.Add("18446744073709551616", "e", "9999999999999999999", "9223372036854775807", "p", "", []byte("1"))
	f.Add("5", "e", "10", "", "", "2", batch)
	f.Add("18446744073709551615", "e", "10", "", "", "2", batch)
	f.Add("5", "e", "10", "", "", "3", batch)
	f.Add("5", "e", "10", "", "", "2", append(batch, 0))
	f.Fuzz(func(t *testing.T, off, epoch, hist, ttl, publisher, count string, data []byte) {
		h := nats.Header{hdrOffset: {off}, hdrEpoch: {epoch}, hdrHistory: {hist}, hdrTTL: {ttl}, hdrPublisher: {publisher}}
		if count != "" {
			h[hdrCount] = []string{count}
		}
		m, err := decodeStored("t", 1, time.Unix(0, 0), h, data)
		if err != nil {
			return
		}
		if m.first == 0 || m.ttl < 0 || len(m.pubs) == 0 || m.offset != m.first+uint64(len(m.pubs))-1 {
			t.Fatalf("decoded %+v from offset %q count %q", m, off, count)
		}
		for i, p := range m.pubs {
			if p.Offset != m.first+uint64(i) || p.Epoch != epoch || p.Topic != "t" {
				t.Fatalf("publication %d: %+v", i, p)
			}
		}
	})
}
