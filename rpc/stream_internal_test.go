package rpc

import (
	"testing"

	"github.com/wsrpc/wsrpc/transport"
)

// The stream's messages round-trip through both codecs: a request's credit,
// a result of a stream (with a JSON-RPC string id too), more credit.
func TestStreamMessagesRoundTrip(t *testing.T) {
	msgs := []message{
		{kind: kindRequest, id: wireID{n: 7}, method: "tail", params: []byte(`["x"]`), credit: 64},
		{kind: kindRequest, id: wireID{n: 8}, method: "plain", params: []byte(`[]`)},
		{kind: kindStreamItem, id: wireID{n: 7}, result: []byte(`{"line":"a"}`)},
		{kind: kindStreamCredit, id: wireID{n: 7}, credit: 32},
	}
	for _, m := range msgs {
		var got message
		if err := decodeBinary(appendBinary(nil, &m), &got, nil, testMeta); err != nil {
			t.Fatalf("binary %+v: %v", m, err)
		}
		if got.kind != m.kind || got.id != m.id || got.credit != m.credit || string(got.result) != string(m.result) || got.method != m.method {
			t.Fatalf("binary: %+v arrived as %+v", m, got)
		}
		js, _, fatal := decodeJSON(appendJSON(nil, &m), nil, nil, 0, testMeta)
		if fatal != nil || len(js) != 1 {
			t.Fatalf("json %+v: %v", m, fatal)
		}
		g := js[0]
		if g.kind != m.kind || g.id != m.id || g.credit != m.credit || string(g.result) != string(m.result) {
			t.Fatalf("json: %s arrived as %+v", appendJSON(nil, &m), g)
		}
	}
	// A JSON-RPC string id is echoed on the results as it came.
	item := message{kind: kindStreamItem, id: wireID{raw: `"a-1"`}, result: []byte(`1`)}
	if got := string(appendJSON(nil, &item)); got != `{"jsonrpc":"2.0","method":"$/stream.item","params":{"id":"a-1","item":1}}` {
		t.Fatalf("item with a string id: %s", got)
	}
	// Bad frames: a credit of 0, trailing bytes, a JSON credit that is not a
	// positive integer.
	if err := decodeBinary([]byte{byte(kindStreamCredit), 0, 7, 0}, &message{}, nil, testMeta); err == nil {
		t.Fatal("binary credit of 0 accepted")
	}
	if err := decodeBinary([]byte{byte(kindStreamCredit), 0, 7, 1, 9}, &message{}, nil, testMeta); err == nil {
		t.Fatal("binary credit with trailing bytes accepted")
	}
	for _, in := range []string{
		`{"jsonrpc":"2.0","method":"$/stream.credit","params":{"id":7,"credit":0}}`,
		`{"jsonrpc":"2.0","method":"$/stream.credit","params":{"id":7,"credit":-1}}`,
		`{"jsonrpc":"2.0","method":"$/stream.credit","params":{"id":7}}`,
		`{"jsonrpc":"2.0","method":"$/stream.item","params":{"id":7}}`,
		`{"jsonrpc":"2.0","method":"$/stream.item","params":[7]}`,
	} {
		js, _, fatal := decodeJSON([]byte(in), nil, nil, 0, testMeta)
		if fatal != nil || len(js) != 1 || js[0].kind != kindInvalid || !js[0].unanswerable {
			t.Fatalf("%s decoded as %+v (%v)", in, js, fatal)
		}
	}
	// A request credit that is not a positive integer is ignored: no stream.
	js, _, _ := decodeJSON([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","$stream":"x"}`), nil, nil, 0, testMeta)
	if len(js) != 1 || js[0].kind != kindRequest || js[0].credit != 0 {
		t.Fatalf("bad $stream: %+v", js)
	}
}

// Stream results may be packed, as notifications are; nothing else may.
func TestPackedStreamResults(t *testing.T) {
	a := appendBinary(nil, &message{kind: kindStreamItem, id: wireID{n: 3}, result: []byte(`1`)})
	b := appendBinary(nil, &message{kind: kindStreamItem, id: wireID{n: 3}, result: []byte(`2`)})
	packed := []byte{byte(kindPacked), 0, byte(len(a))}
	packed = append(append(append(packed, a...), byte(len(b))), b...)
	msgs, err := decodePacked(packed, nil, nil, testMeta)
	if err != nil || len(msgs) != 2 || msgs[0].kind != kindStreamItem || string(msgs[1].result) != "2" {
		t.Fatalf("packed results: %+v, %v", msgs, err)
	}
	r := appendBinary(nil, &message{kind: kindResult, id: wireID{n: 3}, result: []byte(`1`)})
	bad := append([]byte{byte(kindPacked), 0, byte(len(r))}, r...)
	if _, err := decodePacked(bad, nil, nil, testMeta); err == nil {
		t.Fatal("a packed result (kind 3) was accepted")
	}
}

// countingRecycler counts the buffers given back.
type countingRecycler struct{ n int }

func (c *countingRecycler) Recycle([]byte) { c.n++ }

// The results of a received message share its buffer: it goes back to be
// read into again once the dispatch is done and the last result was read,
// whichever comes last, and never when anyone keeps the bytes (a result
// that is most of the buffer, or one in a small buffer, handed out by
// Recv; or something else of the message that the dispatch kept).
func TestStreamResultsShareTheirBuffer(t *testing.T) {
	const size = 3 * copyItemsFrom
	receive := func(kept bool, lens ...int) (*countingRecycler, []streamItem) {
		rec := &countingRecycler{}
		p := &Peer{}
		p.rx = rxMessage{m: transport.Message{Data: make([]byte, size), Recycle: rec}, shared: true}
		var items []streamItem
		off := 0
		for _, n := range lens {
			items = append(items, p.keepItem(p.rx.m.Data[off:off+n]))
			off += n
		}
		if kept {
			p.rx.kept = true // say, a notification's params in the same batch
		}
		p.rx.release()
		return rec, items
	}
	small := copyItemsFrom / 4

	rec, items := receive(false, small, small, small)
	items[0].release() // RecvValue
	if own := items[1].own(); &own[0] == &items[1].data[0] {
		t.Fatal("Recv of a small result in a large buffer kept it in place, not copied")
	}
	if rec.n != 0 {
		t.Fatalf("recycled with a result still unread (%d)", rec.n)
	}
	items[2].release()
	if rec.n != 1 {
		t.Fatalf("recycled %d times once every result was read, want once", rec.n)
	}

	rec, items = receive(true, small, small)
	items[0].release()
	items[1].release()
	if rec.n != 0 {
		t.Fatal("recycled a buffer the dispatch kept")
	}

	rec, items = receive(false, small, size-small)
	items[0].release()
	if own := items[1].own(); &own[0] != &items[1].data[0] {
		t.Fatal("Recv of a result that is most of its buffer copied it")
	}
	if rec.n != 0 {
		t.Fatal("recycled a buffer a result from Recv holds")
	}

	// Read before the dispatch is done: the dispatch's release is the last.
	rec2 := &countingRecycler{}
	p := &Peer{rx: rxMessage{m: transport.Message{Data: make([]byte, size), Recycle: rec2}, shared: true}}
	it := p.keepItem(p.rx.m.Data[:small])
	it.release()
	if rec2.n != 0 {
		t.Fatal("recycled while the dispatch was still going")
	}
	p.rx.release()
	if rec2.n != 1 {
		t.Fatalf("recycled %d times, want once", rec2.n)
	}

	// A buffer not the transport's to reuse is simply aliased.
	p = &Peer{rx: rxMessage{m: transport.Message{Data: make([]byte, size)}}}
	if it := p.keepItem(p.rx.m.Data[:small]); it.buf != nil {
		t.Fatal("shared a buffer that has no Recycle")
	}
}

// StreamWriter.Send writes a JSON-RPC stream result in parts around the
// result (jsonItemHead, the id, jsonItemMember, the result, jsonItemTail):
// together they are what appendJSON writes for it.
func TestJSONStreamItemParts(t *testing.T) {
	for _, item := range []string{`{"a":[1,2]}`, `"x"`, `null`} {
		m := message{kind: kindStreamItem, id: wireID{n: 4711}, result: []byte(item)}
		want := string(appendJSON(nil, &m))
		got := jsonItemHead + "4711" + jsonItemMember + item + string(jsonItemTail)
		if got != want {
			t.Errorf("parts %s\nappendJSON %s", got, want)
		}
	}
}
