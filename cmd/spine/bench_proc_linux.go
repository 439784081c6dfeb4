package main

import (
	"os/exec"
	"syscall"
)

// childProcAttr makes the kernel kill a bench child process when the bench
// dies without stopping it, so that no child outlives its run.
func childProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
