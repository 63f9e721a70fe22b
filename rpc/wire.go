package rpc

import (
	"fmt"
	"strings"

	"github.com/wsrpc/wsrpc/internal/bufpool"
	"github.com/wsrpc/wsrpc/transport"
)

// wireCodec is one wire protocol. Each owns its rules (JSON-RPC's batches,
// validity and null; the binary envelope and its extension block), and the
// Peer sees only messages of the kinds in message.go.
type wireCodec interface {
	// name says what the connection speaks, for errors.
	name() string
	// messageType is the WebSocket message type every message has.
	messageType() transport.MessageType
	// jsonValues reports whether params and results must be JSON whatever
	// the value Codec (JSON-RPC).
	jsonValues() bool

	// decode decodes one received message into msgs (reusing dst's array).
	// batch reports that the replies to these messages go out together (a
	// JSON-RPC batch). An *Error answers the whole message (with a null id)
	// and the connection stays; any other error is a protocol violation
	// that closes the connection.
	decode(data []byte, dst []message, in *interner, lim decodeLimits) (msgs []message, batch bool, err error)
	// encode encodes m into a pooled buffer (see bufpool). m is passed by
	// value: through an interface, a pointer would make every message
	// escape to the heap.
	encode(m message) []byte
	// appendToBatch appends m to the reply of a batch in buf (empty at
	// first); closeBatch ends it. Only codecs that decode batches use them.
	appendToBatch(buf []byte, m message) []byte
	closeBatch(buf []byte) []byte

	// checkParams says whether raw params may be sent.
	checkParams(b []byte) error
	// result makes a handler's result ready to send (nil: none), or
	// returns the error to send instead.
	result(b []byte) ([]byte, *Error)
	// errorData makes an error ready to send (JSON-RPC drops data that is
	// not JSON, and says so).
	errorData(e *Error) *Error
	// packer joins encoded notifications queued together into one
	// message (a JSON-RPC batch; a wsrpc.v1 packed message).
	packer() transport.Packer
}

// decodeLimits bound what one message may hold.
type decodeLimits struct {
	maxBatch int
	meta     metaLimits
}

func wireFor(subprotocol string) (wireCodec, error) {
	switch {
	case strings.EqualFold(subprotocol, SubprotocolBinary): // the handshake matched it case-insensitively
		return binaryWire{}, nil
	case subprotocol == "", strings.EqualFold(subprotocol, SubprotocolJSON):
		return jsonWire{}, nil
	}
	return nil, fmt.Errorf("wsrpc: unsupported subprotocol %q", subprotocol)
}

// binaryWire is wsrpc.v1 (bincodec.go).
type binaryWire struct{}

func (binaryWire) name() string                       { return SubprotocolBinary + " (binary)" }
func (binaryWire) messageType() transport.MessageType { return transport.Binary }
func (binaryWire) jsonValues() bool                   { return false }

func (binaryWire) decode(data []byte, dst []message, in *interner, lim decodeLimits) ([]message, bool, error) {
	if len(data) > 0 && kind(data[0]) == kindPacked {
		msgs, err := decodePacked(data, dst, in, lim.meta)
		// The notifications share the buffer, as a batch's calls do; they
		// have no replies to gather.
		return msgs, true, err
	}
	msgs := append(dst[:0], message{})
	if err := decodeBinary(data, &msgs[0], in, lim.meta); err != nil {
		return dst[:0], false, err
	}
	return msgs, false, nil
}

func (binaryWire) encode(m message) []byte {
	return appendBinary(bufpool.Get(binarySize(&m)), &m)
}

func (binaryWire) appendToBatch(buf []byte, m message) []byte {
	panic("rpc: the binary codec has no batches")
}
func (binaryWire) closeBatch(buf []byte) []byte { panic("rpc: the binary codec has no batches") }

func (binaryWire) packer() transport.Packer         { return binaryPacker{} }
func (binaryWire) checkParams([]byte) error         { return nil }
func (binaryWire) result(b []byte) ([]byte, *Error) { return b, nil }
func (binaryWire) errorData(e *Error) *Error        { return e }

// jsonWire is JSON-RPC 2.0 in text messages (jsoncodec.go).
type jsonWire struct{}

func (jsonWire) name() string                       { return "JSON-RPC (text)" }
func (jsonWire) messageType() transport.MessageType { return transport.Text }
func (jsonWire) jsonValues() bool                   { return true }

func (jsonWire) decode(data []byte, dst []message, in *interner, lim decodeLimits) ([]message, bool, error) {
	msgs, batch, fatal := decodeJSON(data, dst, in, lim.maxBatch, lim.meta)
	if fatal != nil {
		return msgs, false, fatal
	}
	return msgs, batch, nil
}

func (jsonWire) encode(m message) []byte {
	return appendJSON(bufpool.Get(jsonSize(&m)), &m)
}

func (jsonWire) appendToBatch(buf []byte, m message) []byte {
	if len(buf) == 0 {
		buf = append(buf, '[')
	} else {
		buf = append(buf, ',')
	}
	return appendJSON(buf, &m)
}

func (jsonWire) closeBatch(buf []byte) []byte { return append(buf, ']') }

func (jsonWire) packer() transport.Packer { return jsonPacker{} }

// jsonPacker packs notifications into a JSON-RPC batch: an array of them.
type jsonPacker struct{}

func (jsonPacker) Pack(dst []byte, msgs []transport.Message) []byte {
	dst = append(dst, '[')
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m.Data...)
	}
	return append(dst, ']')
}

// checkParams: JSON-RPC params are a JSON array or object.
func (jsonWire) checkParams(b []byte) error {
	if b == nil {
		return nil
	}
	if !jsonValid(b) {
		return &Error{Code: CodeInvalidParams, Message: "params are not valid JSON"}
	}
	if first := firstNonSpace(b); first == '[' || first == '{' {
		return nil
	}
	return &Error{Code: CodeInvalidParams, Message: "JSON-RPC params must be an array or an object"}
}

// result: JSON-RPC results are JSON, and a missing one is null.
func (jsonWire) result(b []byte) ([]byte, *Error) {
	switch {
	case b == nil:
		return jsonNull, nil
	case !jsonValid(b):
		return nil, &Error{Code: CodeInternalError, Message: "handler returned a result that is not valid JSON"}
	}
	return b, nil
}

func (jsonWire) errorData(e *Error) *Error {
	if e.Data == nil || jsonValid(e.Data) {
		return e
	}
	return &Error{Code: e.Code, Message: e.Message + " (error data dropped: not valid JSON)"}
}

var jsonNull = []byte("null")

// jsonSize is an estimate of the encoded size of m; appendJSON grows the
// buffer if escaping makes it longer.
func jsonSize(m *message) int {
	n := 96 + len(m.method) + len(m.params) + len(m.result) + len(m.id.raw) + len(m.reason)
	if m.err != nil {
		n += len(m.err.Message) + len(m.err.Data)
	}
	for k, v := range m.meta {
		n += 8 + len(k) + len(v)
	}
	return n
}
