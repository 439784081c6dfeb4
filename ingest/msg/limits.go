package msg

import (
	"errors"
	"fmt"
	"strings"
)

// Limits bounds what Parse accepts. A zero field means its default.
type Limits struct {
	// MaxBytes is the largest message accepted, in bytes. Default 256 KiB.
	MaxBytes int
	// MaxDepth is the deepest nesting of objects and arrays accepted; the
	// top-level object is depth 1. Default 64.
	MaxDepth int
}

// Default limits.
const (
	DefaultMaxBytes = 256 << 10
	DefaultMaxDepth = 64
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxBytes: DefaultMaxBytes, MaxDepth: DefaultMaxDepth}
}

// Validate reports every problem with l at once.
func (l Limits) Validate() error {
	var buf strings.Builder
	if l.MaxBytes < 0 {
		fmt.Fprintf(&buf, "MaxBytes (%d) must be >= 0 (0 means %d)\n", l.MaxBytes, DefaultMaxBytes)
	}
	if l.MaxDepth < 0 {
		fmt.Fprintf(&buf, "MaxDepth (%d) must be >= 0 (0 means %d)\n", l.MaxDepth, DefaultMaxDepth)
	}
	if buf.Len() == 0 {
		return nil
	}
	return errors.New("msg: invalid limits:\n" + buf.String())
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}
