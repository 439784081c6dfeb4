package main

import (
	"os"
	"os/exec"
	"runtime"
	"time"
)

// startChild starts a bench child process (see childProcAttr) and returns
// the channel that gets the result of its Wait. The kernel sends the
// parent-death signal when the thread that started the child ends, not
// the process, and Go ends a thread when a goroutine locked to it exits
// (the engine's low-priority workers do), so the child is started and
// waited for on a thread held for the child's whole life.
func startChild(cmd *exec.Cmd) (<-chan error, error) {
	childProcAttr(cmd)
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// stopChild interrupts a child and kills it if it has not exited (exited
// delivered) within grace.
func stopChild[T any](p *os.Process, exited <-chan T, grace time.Duration) {
	_ = p.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
