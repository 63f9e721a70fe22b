//go:build !linux

package cli

import "errors"

// The prompt of connect needs terminal control that this build does without
// (it is written for Linux's termios): connect reads lines as a pipe's.

func isTTY(uintptr) bool { return true } // the character device check alone

type rawTerm struct{}

func makeRaw(uintptr) (*rawTerm, error) { return nil, errors.New("no prompt on this system") }

func (*rawTerm) restore() error { return nil }

func (*rawTerm) width() int { return 80 }

func readTerm(uintptr, []byte) (int, error) { return 0, errors.New("no prompt on this system") }
