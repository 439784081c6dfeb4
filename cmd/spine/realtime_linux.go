package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// setRealtime puts every thread of the process under SCHED_FIFO at prio.
// The kernel then runs them as soon as they wake, ahead of every thread
// at a normal priority; on a small machine saturated by ingestion that is
// what keeps a lookup's tail short (bench/RESULTS.md). Threads started
// later inherit the policy from the thread that starts them, and all of
// them are set here; the list is walked twice for threads started
// meanwhile.
func setRealtime(prio int) error {
	if prio < 1 || prio > 99 {
		return fmt.Errorf("want 1 to 99")
	}
	attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetAttr(tid, attr, 0); err != nil && err != unix.ESRCH {
				return fmt.Errorf("set SCHED_FIFO on thread %d: %w (needs root or CAP_SYS_NICE)", tid, err)
			}
		}
	}
	return nil
}

// realtimeAllowed reports whether this process may run threads under
// SCHED_FIFO at prio, by trying on a thread of its own that then ends.
func realtimeAllowed(prio int) error {
	if prio < 1 || prio > 99 {
		return fmt.Errorf("want 1 to 99")
	}
	errc := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread ends with the goroutine,
		// so no other goroutine runs at its priority.
		runtime.LockOSThread()
		attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
		errc <- unix.SchedSetAttr(0, attr, 0)
	}()
	return <-errc
}

// sleepExactly sleeps for d in the kernel's high-resolution timer. A Go
// timer under a millisecond can wake up to a millisecond late: an idle Go
// runtime waits in epoll, whose timeout has millisecond steps
// (BenchmarkSleepLateness; bench/RESULTS.md). It blocks its thread, not
// the Go scheduler.
func sleepExactly(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
