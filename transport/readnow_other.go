//go:build !unix

package transport

import "syscall"

// Reading without waiting needs a Unix socket; elsewhere connections read
// the usual way and do not read ahead.
type nowReader struct{}

func newNowReader(syscall.RawConn) *nowReader { return nil }

func (*nowReader) readNow([]byte) int { return -1 }
