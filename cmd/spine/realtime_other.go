//go:build !linux

package main

import "errors"

// setRealtime is Linux only.
func setRealtime(int) error { return errors.New("real-time priority is supported on Linux only") }

// realtimeAllowed is Linux only.
func realtimeAllowed(int) error { return setRealtime(0) }
