//go:build !linux

package main

import (
	"errors"
	"time"
)

// setRealtime is Linux only.
func setRealtime(int) error { return errors.New("real-time priority is supported on Linux only") }

// realtimeAllowed is Linux only.
func realtimeAllowed(int) error { return setRealtime(0) }

// sleepExactly is time.Sleep outside Linux.
func sleepExactly(d time.Duration) { time.Sleep(d) }
