package natsbroker

import (
	"bytes"
	"strconv"
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
		if m.first == 0 || m.ttl < 0 || m.history < 0 || len(m.pubs) == 0 || m.offset != m.first+uint64(len(m.pubs))-1 {
			t.Fatalf("decoded %+v from offset %q count %q", m, off, count)
		}
		for i, p := range m.pubs {
			if p.Offset != m.first+uint64(i) || p.Epoch != epoch || p.Topic != "t" {
				t.Fatalf("publication %d: %+v", i, p)
			}
		}
	})
}

// FuzzBatchRoundTrip: what encodeBatch frames, decodeStored gives back,
// publication by publication.
func FuzzBatchRoundTrip(f *testing.F) {
	f.Add([]byte(`"a"`), "p1", []byte(`{"b":1}`), "", uint8(3))
	f.Add([]byte{}, "", []byte{0, 1, 2}, "x", uint8(0))
	f.Fuzz(func(t *testing.T, d1 []byte, p1 string, d2 []byte, p2 string, extra uint8) {
		batch := []*pendingPub{{data: d1, publisher: p1}, {data: d2, publisher: p2}}
		for i := range int(extra % 8) {
			batch = append(batch, &pendingPub{data: d1[:min(i, len(d1))], publisher: p2})
		}
		body, pub := encodeBatch(batch)
		if pub != "" {
			t.Fatalf("a batch of %d gave a publisher header %q", len(batch), pub)
		}
		h := nats.Header{hdrOffset: {"41"}, hdrEpoch: {"e"}, hdrCount: {strconv.Itoa(len(batch))}}
		m, err := decodeStored("t", 9, time.Time{}, h, body)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.pubs) != len(batch) || m.first != 41 || m.offset != 40+uint64(len(batch)) {
			t.Fatalf("decoded %d publications %d..%d", len(m.pubs), m.first, m.offset)
		}
		for i, p := range m.pubs {
			if !bytes.Equal(p.Data, batch[i].data) || p.Publisher != batch[i].publisher || p.Offset != 41+uint64(i) {
				t.Fatalf("publication %d: %+v, want %q by %q", i, p, batch[i].data, batch[i].publisher)
			}
		}
	})
}
