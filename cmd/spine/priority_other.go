//go:build !linux

package main

import "log/slog"

// backgroundAt is nil where threads have no nice value of their own: the
// ingest and the API share the CPU evenly.
func backgroundAt(int, *slog.Logger) func() { return nil }
