package main

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill cmd's process when this one ends,
// however it ends (a SIGKILL included).
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
