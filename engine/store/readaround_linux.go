package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// logAdviser marks Badger's log mappings (value log, memtable logs) in one
// directory for random access (MADV_RANDOM) as Badger creates them, so that
// a page fault in them reads one page instead of the kernel's read-around
// window. See Options.NoReadAround for why.
//
// Badger keeps its mappings to itself, so the adviser finds them in
// /proc/self/maps: once at start, and again whenever inotify reports a new
// log file in the directory. Badger writes a new log's header as soon as
// it has mapped the file, before the adviser can see it, so the first
// fault of every new log (a memtable's every 32 MB written, a value log's
// every 256 MB) still reads the whole window; the faults after it read a
// page each.
type logAdviser struct {
	dir    string
	events *os.File // inotify, non-blocking: Close wakes the reader
	stop   chan struct{}
	done   chan struct{}
	log    *slog.Logger
	seen   map[string]bool // mapping ("start-end path") already advised
	failed *atomic.Bool    // set once a new log may keep the read-around (Store.ReadAround)
}

func startLogAdviser(dir string, log *slog.Logger, failed *atomic.Bool) (*logAdviser, error) {
	// /proc/self/maps names files by their real path.
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("store: advise logs: %w", err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("store: advise logs: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, abs, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("store: advise logs: watch %s: %w", abs, err)
	}
	a := &logAdviser{
		dir:    abs + string(filepath.Separator),
		events: os.NewFile(uintptr(fd), "inotify"),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		log:    log,
		seen:   map[string]bool{},
		failed: failed,
	}
	// Badger maps its newest value log at open: none found means the
	// paths did not match, and the option would do nothing.
	mapped, err := a.advise()
	if err == nil && !hasValueLog(mapped) {
		err = fmt.Errorf("store: advise logs: no value log of %s is mapped", abs)
	}
	if err != nil {
		a.events.Close()
		return nil, err
	}
	go a.run()
	return a, nil
}

func hasValueLog(names map[string]bool) bool {
	for name := range names {
		if strings.HasSuffix(name, ".vlog") {
			return true
		}
	}
	return false
}

// close stops the adviser and waits for its goroutine. It is called once,
// by Store.Close.
func (a *logAdviser) close() {
	if a == nil {
		return
	}
	close(a.stop)
	a.events.Close()
	<-a.done
}

func (a *logAdviser) run() {
	defer close(a.done)
	buf := make([]byte, 16<<10)
	for {
		n, err := a.events.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				a.failed.Store(true)
				a.log.Warn("store: advise logs: inotify read failed; new log files keep the kernel's read-around", "err", err)
			}
			return
		}
		if !a.await(createdLogs(buf[:n])) {
			return
		}
	}
}

// await advises the mappings of new log files: Badger maps a log right
// after creating it, so the adviser looks again and again, soon at first,
// then every second while a file it waits for exists and is not mapped,
// until a scan of the mappings fails. It returns false once the adviser is
// stopped.
func (a *logAdviser) await(pending []string) bool {
	wait := time.Millisecond
	for len(pending) > 0 {
		mapped, err := a.advise()
		if err != nil {
			// Tried again at the next new log, not every second.
			a.failed.Store(true)
			a.log.Warn("store: advise logs; the new logs keep the kernel's read-around", "err", err)
			return true
		}
		pending = slices.DeleteFunc(pending, func(name string) bool {
			if mapped[name] {
				return true
			}
			_, err := os.Stat(a.dir + name)
			return errors.Is(err, os.ErrNotExist)
		})
		if len(pending) == 0 {
			return true
		}
		select {
		case <-a.stop:
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	return true
}

// createdLogs returns the value logs and memtable logs a batch of inotify
// events reports created.
func createdLogs(b []byte) []string {
	var out []string
	for len(b) >= unix.SizeofInotifyEvent {
		nameLen := int(binary.NativeEndian.Uint32(b[12:16]))
		end := unix.SizeofInotifyEvent + nameLen
		if end > len(b) {
			break
		}
		name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:end], "\x00"))
		if isLogFile(name) {
			out = append(out, name)
		}
		b = b[end:]
	}
	return out
}

func isLogFile(name string) bool {
	return strings.HasSuffix(name, ".vlog") || strings.HasSuffix(name, ".mem")
}

// advise sets MADV_RANDOM on every log mapping of the directory not yet
// advised, and returns the names of the log files whose mappings are
// advised. A mapping unmapped between the read of /proc/self/maps and the
// madvise call fails harmlessly and is tried at the next scan (or, if the
// range was mapped again meanwhile, gets a hint that only changes how a
// file-backed mapping reads ahead).
func (a *logAdviser) advise() (map[string]bool, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("store: advise logs: %w", err)
	}
	defer f.Close()
	now := make(map[string]bool, len(a.seen))
	mapped := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "start-end perms offset dev inode path": only the path holds a
		// slash, and it may hold spaces.
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		name, ok := strings.CutPrefix(line[i:], a.dir)
		if !ok || strings.ContainsRune(name, '/') || !isLogFile(name) {
			continue
		}
		rng, _, _ := strings.Cut(line, " ")
		id := rng + " " + name
		if !a.seen[id] {
			lo, hi, ok := parseRange(rng)
			if !ok {
				continue
			}
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_RANDOM); errno != 0 {
				continue // unmapped meanwhile
			}
			a.log.Debug("store: log mapped for random access", "file", name)
		}
		now[id] = true
		mapped[name] = true
	}
	if err := sc.Err(); err != nil {
		return mapped, fmt.Errorf("store: advise logs: read maps: %w", err)
	}
	a.seen = now // forget mappings that are gone
	return mapped, nil
}

// parseRange parses "start-end" in hex, as /proc/self/maps writes it.
func parseRange(s string) (lo, hi uintptr, ok bool) {
	a, b, found := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(a, 16, 64)
	h, err2 := strconv.ParseUint(b, 16, 64)
	if !found || err1 != nil || err2 != nil || h <= l {
		return 0, 0, false
	}
	return uintptr(l), uintptr(h), true
}
