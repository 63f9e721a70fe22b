package rpc

import "time"

// kind is what a wire message is. The values are the first byte of a
// wsrpc.v1 binary message (see docs/PROTOCOL.md).
type kind uint8

const (
	kindInvalid      kind = 0 // decoded but not valid: err says why (JSON-RPC only)
	kindRequest      kind = 1 // a call that wants a reply
	kindNotification kind = 2 // a call with no reply
	kindResult       kind = 3 // a successful reply
	kindError        kind = 4 // an error reply
	kindCancel       kind = 5 // the caller gave up on request id
	kindShutdown     kind = 6 // the sender is shutting down: no new calls, please
	// kindPacked is a wsrpc.v1 message that carries several notifications
	// (docs/PROTOCOL.md); the binary codec unpacks it, so the Peer never
	// sees this kind.
	kindPacked kind = 7
	// kindStreamItem is one result of a stream (docs/PROTOCOL.md, streams):
	// sent by the side serving request id, only when the request asked for
	// a stream (credit > 0).
	kindStreamItem kind = 8
	// kindStreamCredit lets the side serving request id send credit more
	// items; sent by the caller, only after a first item arrived.
	kindStreamCredit kind = 9

	// kindIgnored is a received binary message of a kind this runtime does
	// not know from the range a receiver ignores (0x40 and up; see
	// docs/PROTOCOL.md, extensions). It is never sent.
	kindIgnored kind = 0xff
	// kindFirstIgnorable is where the ignorable kinds begin.
	kindFirstIgnorable kind = 0x40
)

// wireID identifies a request on the wire. Requests this runtime sends always
// use non-negative integers (raw == ""). An id received from a JSON-RPC peer
// that is not a non-negative integer is kept as its exact JSON text in raw
// (strings keep their quotes, "null" is null), so it can be echoed verbatim.
type wireID struct {
	n   uint64
	raw string
}

var nullID = wireID{raw: "null"}

// message is one decoded wire message, whatever the codec. Byte slices alias
// the buffer the message was decoded from.
type message struct {
	kind   kind
	id     wireID
	method string
	params []byte // raw params; nil when absent
	result []byte // raw result (kindResult); JSON "null" when the handler returned none
	err    *Error // kindError, kindInvalid
	// response marks a kindInvalid element that was meant as a reply (it had
	// "result" or "error"): it is never answered, since replies get no reply.
	response bool
	timeout  time.Duration // kindRequest: relative deadline, 0 for none
	meta     Metadata      // kindRequest, kindNotification: nil when none
	// unanswerable marks a kindInvalid notification of the binary codec: it
	// has no id to answer, so it is dropped and counted.
	unanswerable bool

	retryAfter time.Duration // kindShutdown: hint for when to reconnect
	reason     string        // kindShutdown

	// credit is, on kindRequest, the items the caller accepts as a stream
	// before it grants more (0: the caller takes no stream); on
	// kindStreamCredit, the items it grants. kindStreamItem's item is in
	// result.
	credit uint64
}

// interner returns a shared string for byte slices seen before, so that
// decoding a method name does not allocate on every message. It is owned by
// one goroutine (the peer's reader) and holds at most maxInterned names.
type interner struct{ m map[string]string }

const (
	maxInterned    = 1024
	maxInternedLen = 128 // longer names are not kept: the peer chooses them
)

func (in *interner) intern(b []byte) string {
	if in == nil || len(b) > maxInternedLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}
