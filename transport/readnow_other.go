//go:build !unix

package transport

import (
	"net"
	"syscall"
)

// Reading without waiting needs a Unix socket; elsewhere connections read
// the usual way and do not read ahead.
type nowReader struct{}

func newNowReader(syscall.RawConn, net.Conn) *nowReader { return nil }

func (*nowReader) readNow([]byte) (int, error) { return -1, nil }

func (*nowReader) readWait(int) ([]byte, int, error) {
	panic("transport: readWait without a Unix socket")
}

// Writing without waiting needs a Unix socket too.
type nowWriter struct{}

func newNowWriter(syscall.RawConn) *nowWriter { return nil }

func (*nowWriter) writeNow([]byte) (int, error) { panic("transport: writeNow without a Unix socket") }
