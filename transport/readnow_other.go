//go:build !unix

package transport

import "syscall"

// Reading without waiting needs a Unix socket; elsewhere connections read
// the usual way and do not read ahead.
const canReadNow = false

func readNow(syscall.RawConn, []byte) int { return -1 }
