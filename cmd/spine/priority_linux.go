package main

import (
	"log/slog"
	"runtime"
	"sync"
	"syscall"
)

// backgroundAt returns the Config.Background of the engine and the
// consumer, run first by each of their worker goroutines (the writer, its
// encoding helper and value-log collector, the decoders, and here the
// sinks): it lowers the worker's thread to the given nice value, so that
// the kernel prefers the API's threads when both want a CPU. nil when nice
// is 0.
//
// Linux keeps a nice value per thread, and Go moves goroutines between
// threads, so the goroutine is locked to its thread first. It never
// unlocks: when it ends, Go ends the thread with it, so no lowered thread
// goes back to serve other goroutines. Threads Go starts while it is
// locked come from its template thread, at the process's priority.
func backgroundAt(nice int, log *slog.Logger) func() {
	if nice <= 0 {
		return nil
	}
	var warn sync.Once
	return func() {
		runtime.LockOSThread()
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice); err != nil {
			warn.Do(func() { log.Warn("ingest threads keep the API's CPU priority", "nice", nice, "err", err) })
		}
	}
}

// The main goroutine keeps the process's main thread. Go cannot end that
// thread: if a lowered worker ended on it, Go would park it for good at
// nice 19, and ps and top, which show the main thread's nice value, would
// show the whole process lowered.
func init() { runtime.LockOSThread() }
