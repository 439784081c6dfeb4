//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// mmapWrite writes 700 MB, 4 KB at a time, into a fresh 1 GB sparse file
// through a shared mapping, as Badger writes its value log, and prints how
// long each 4 KB write took. advice "random" sets MADV_RANDOM on the
// mapping first: the kernel then faults in one page at a time instead of
// reading around each fault (read_ahead_kb).
func mmapWrite(path, advice string, out io.Writer) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	const size, written, step = 1 << 30, 700 << 20, 4 << 10
	if err := f.Truncate(size); err != nil {
		return err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	defer unix.Munmap(data)
	switch advice {
	case "random":
		if err := unix.Madvise(data, unix.MADV_RANDOM); err != nil {
			return err
		}
	case "none":
	default:
		return fmt.Errorf("advice %q: want none or random", advice)
	}
	src := make([]byte, step)
	for i := range src {
		src[i] = byte(i)
	}
	lat := make([]time.Duration, 0, written/step)
	start := time.Now()
	for off := 0; off < written; off += step {
		t := time.Now()
		copy(data[off:], src)
		lat = append(lat, time.Since(t))
	}
	fmt.Fprintf(out, "%s: 700 MB in %v; per 4 KB write %s\n", advice, time.Since(start).Round(time.Millisecond), summary(lat))
	return nil
}
