//go:build linux

package cli

import (
	"syscall"
	"unsafe"
)

// ioctl calls ioctl(2) on fd with a pointer argument.
func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// isTTY reports whether fd is a terminal: whether it has terminal
// attributes (isatty(3) does the same).
func isTTY(fd uintptr) bool {
	var t syscall.Termios
	return ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)) == nil
}

// rawTerm is a terminal put in the mode of connect's prompt; restore puts
// it back as it was.
type rawTerm struct {
	fd  uintptr
	old syscall.Termios
}

// makeRaw turns off the terminal's line editing and echo, so that connect
// edits the line itself and can print above it, and makes a read return
// after a tenth of a second without input, so that the reader can stop.
// Ctrl-C still interrupts and output processing stays on; Ctrl-Z does not
// suspend (a stopped connect would leave the shell a terminal in raw mode,
// and come back to one in line mode).
func makeRaw(fd uintptr) (*rawTerm, error) {
	var t syscall.Termios
	if err := ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)); err != nil {
		return nil, err
	}
	r := &rawTerm{fd: fd, old: t}
	t.Lflag &^= syscall.ICANON | syscall.ECHO | syscall.IEXTEN
	t.Iflag &^= syscall.IXON
	t.Cc[syscall.VSUSP] = 0 // _POSIX_VDISABLE
	t.Cc[syscall.VMIN] = 0
	t.Cc[syscall.VTIME] = 1
	if err := ioctl(fd, syscall.TCSETS, unsafe.Pointer(&t)); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rawTerm) restore() error {
	return ioctl(r.fd, syscall.TCSETS, unsafe.Pointer(&r.old))
}

// width returns the terminal's width in columns, 80 when it does not say.
func (r *rawTerm) width() int {
	var ws struct{ Row, Col, X, Y uint16 }
	if ioctl(r.fd, syscall.TIOCGWINSZ, unsafe.Pointer(&ws)) != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

// readTerm reads from the terminal fd: 0 bytes and no error when a tenth of
// a second passed without input.
func readTerm(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err == syscall.EINTR {
			continue
		}
		return max(n, 0), err
	}
}
