//go:build unix

package transport

import "syscall"

const canReadNow = true

// readNow reads what the socket under raw already has into b, without
// waiting for more. It returns the byte count, or 0 or less when there was
// nothing to read (or the read failed: the caller's next, waiting read sees
// the error or the end of the stream again).
func readNow(raw syscall.RawConn, b []byte) int {
	n := -1
	err := raw.Read(func(fd uintptr) bool {
		var rerr error
		n, rerr = syscall.Read(int(fd), b)
		if rerr != nil {
			n = -1
		}
		return true // one attempt: never wait for the socket to be readable
	})
	if err != nil {
		return -1
	}
	return n
}
