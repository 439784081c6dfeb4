//go:build !linux

package store

import (
	"errors"
	"log/slog"
	"sync/atomic"
)

// logAdviser does nothing outside Linux: Options.NoReadAround needs
// madvise on Badger's mappings, found through /proc/self/maps.
type logAdviser struct{}

func startLogAdviser(string, *slog.Logger, *atomic.Bool) (*logAdviser, error) {
	return nil, errors.New("store: advise logs: Linux only")
}

func (*logAdviser) close() {}
