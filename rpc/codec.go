package rpc

import (
	"encoding/json"
)

// Subprotocols naming the two wire codecs. A connection with no subprotocol
// speaks JSON-RPC 2.0, so that browsers and plain JSON-RPC clients work.
const (
	SubprotocolBinary = "wsrpc.v1"
	SubprotocolJSON   = "jsonrpc2.0"
)

// Subprotocols lists the subprotocols the runtime speaks, in the order a
// server should prefer them.
func Subprotocols() []string { return []string{SubprotocolBinary, SubprotocolJSON} }

// Codec turns Go values into params and results and back. The default is
// [JSON]. The JSON-RPC wire codec carries params and results as JSON text, so
// a connection that negotiated it always uses JSON values whatever Codec is
// configured.
//
// Unmarshal must not keep data, or anything sliced from it, after it
// returns: the buffer is reused (like encoding.BinaryUnmarshaler, it must
// copy what it keeps).
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default value codec (encoding/json).
var JSON Codec = jsonValues{}

type jsonValues struct{}

func (jsonValues) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonValues) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Raw is a value that is already encoded. Passed as params it is sent as it
// is; as the result target (*Raw) it receives a copy of the result bytes,
// undecoded, reusing the Raw's backing array when it has room (as
// json.RawMessage does), so a caller that reuses one Raw across calls does
// not allocate. On a JSON-RPC connection a Raw must hold valid JSON.
type Raw []byte

// ValidJSON reports whether b is one JSON value in valid UTF-8, as the
// JSON-RPC codec requires of params and results. It uses the codec's own
// scanner, several times faster than encoding/json.Valid.
func ValidJSON(b []byte) bool { return jsonValid(b) }
