package natsbroker

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// FuzzDecodeStored feeds decodeStored the headers a message from NATS may
// carry: it must never panic, and accept only a positive offset.
func FuzzDecodeStored(f *testing.F) {
	f.Add("1", "abcd1234", "100", "60000", "peer-1", []byte(`"x"`))
	f.Add("", "", "", "", "", []byte{})
	f.Add("-1", "e", "x", "-5", "", []byte("{"))
	f.Add("18446744073709551616", "e", "9999999999999999999", "9223372036854775807", "p", []byte("1"))
	f.Fuzz(func(t *testing.T, off, epoch, hist, ttl, publisher string, data []byte) {
		h := nats.Header{hdrOffset: {off}, hdrEpoch: {epoch}, hdrHistory: {hist}, hdrTTL: {ttl}, hdrPublisher: {publisher}}
		m, err := decodeStored("t", 1, time.Unix(0, 0), h, data)
		if err != nil {
			return
		}
		if m.offset == 0 || m.pub.Offset != m.offset || m.ttl < 0 || m.pub.Epoch != epoch {
			t.Fatalf("decoded %+v from offset %q", m, off)
		}
	})
}
