// Package wstest is a test helper that speaks raw RFC 6455 WebSocket over a
// plain TCP socket.
//
// It exists so that tests of the wsrpc WebSocket transport can talk to the
// transport at the frame level: send hand-made frames (including invalid,
// truncated or garbage ones), observe exactly which frames the transport
// sends back, and simulate peers that misbehave or vanish without a close
// handshake. It performs only the minimal HTTP/1.1 upgrade handshake, never
// negotiates extensions, never answers pings or close frames by itself and
// never fragments or reassembles messages: every frame is under the control
// of the test.
//
// Two kinds of Peer exist:
//
//   - DialPeer returns a client-side Peer connected to a ws:// URL; frames it
//     writes are masked with a random key, as RFC 6455 requires of clients.
//   - Server accepts a raw connection on 127.0.0.1 and returns a server-side
//     Peer; frames it writes are not masked.
//
// ReadFrame checks the encoding of received frames strictly (reserved bits,
// masking direction, reserved opcodes, control-frame rules, minimal length
// encoding) and reports violations as errors wrapping ErrProtocol, because
// such a frame means the implementation under test is broken. WriteFrame and
// WriteRaw, on the other hand, let a test send whatever it likes.
//
// This package is for tests only. It favours clarity and control over
// performance and robustness and must not be used in production code.
//
// # Concurrency
//
// A Peer is not safe for concurrent use by multiple readers, nor by multiple
// writers: at most one goroutine may call the reading methods (ReadFrame,
// ReadClose) and at most one goroutine may call the writing methods
// (WriteFrame, WriteRaw, CloseFrame) at a time. One reader and one writer may
// run concurrently with each other. Close and the deadline setters may be
// called from any goroutine at any time.
package wstest
