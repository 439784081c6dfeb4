package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// threadNice reads the nice value of thread tid of this process; ok is
// false once the thread is gone.
func threadNice(t *testing.T, tid int) (nice int, ok bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces; the fields after it may not.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[16]) // field 19 of proc(5), counted from the state (3)
	if err != nil {
		t.Fatal(err)
	}
	return n, true
}

// lowered lists the threads of this process at the given nice value.
func lowered(t *testing.T, nice int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var tids []int
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if n, ok := threadNice(t, tid); ok && n == nice {
			tids = append(tids, tid)
		}
	}
	return tids
}

// The background hook lowers its own thread only, and Go ends that thread
// with the goroutine, so no lowered thread is left to run other work.
func TestBackgroundLowersOnlyItsThread(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if backgroundAt(0, log) != nil {
		t.Error("backgroundAt(0) is not nil")
	}
	own, _ := threadNice(t, syscall.Gettid())
	if own == 19 {
		t.Skip("the tests run at nice 19 already")
	}
	if n := lowered(t, 19); len(n) > 0 {
		t.Fatalf("threads %v are at nice 19 before the test", n)
	}
	bg := backgroundAt(19, log)
	const workers = 50
	tids, release := make(chan int, workers), make(chan struct{})
	for range workers {
		go func() {
			bg()
			tids <- syscall.Gettid()
			<-release
		}()
	}
	seen := map[int]bool{}
	for range workers {
		tid := <-tids
		if tid == os.Getpid() {
			t.Error("a lowered goroutine ran on the main thread, which init keeps for the main goroutine")
		}
		if seen[tid] {
			t.Errorf("two lowered goroutines shared thread %d", tid)
		}
		seen[tid] = true
		if n, _ := threadNice(t, tid); n != 19 {
			t.Errorf("background thread %d at nice %d, want 19", tid, n)
		}
	}
	if n, _ := threadNice(t, syscall.Gettid()); n != own {
		t.Errorf("the test's thread went from nice %d to %d", own, n)
	}
	close(release)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := lowered(t, 19)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads %v are still at nice 19 after their goroutines ended", left)
		}
	}
}

func TestIngestNiceRange(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, n := range []int{-1, 20} {
		_, err := startProcess(context.Background(), &runOptions{IngestNice: n}, log)
		if err == nil || !strings.Contains(err.Error(), "--ingest-nice") {
			t.Errorf("--ingest-nice %d: err %v, want a range error", n, err)
		}
	}
}
