package main

import (
	"os/exec"
	"syscall"
)

// childProcAttr makes the kernel kill a bench child process when the bench
// dies without stopping it, so that no child outlives its run, and starts
// the child in a session of its own. With autogrouping (Linux's default on
// desktops and many servers, /proc/sys/kernel/sched_autogroup_enabled)
// the kernel shares CPU time fairly between sessions first: in the bench's
// session the broker and the lookup client would each get a thread's share
// among the engine's, where in production they run as processes of their
// own, on other machines.
func childProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: true}
}
