//go:build !linux

package main

import "os/exec"

// killWithParent does nothing here: only Linux has a parent-death signal.
// The serve processes are still stopped on every path but this process's
// own SIGKILL.
func killWithParent(*exec.Cmd) {}
