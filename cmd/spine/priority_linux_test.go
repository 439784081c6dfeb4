package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spinecdp/spine/ingest/kafkatest"
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

// waitNoneLowered waits up to 5 s for the last thread at nice 19 to end.
func waitNoneLowered(t *testing.T, after string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := lowered(t, 19)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads %v are still at nice 19 %s", left, after)
		}
	}
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
	waitNoneLowered(t, "after their goroutines ended")
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

// With --ingest-nice 19 the whole process works as without: every valid
// message of every channel is applied once, from a broker over TCP. Its
// ingest runs on lowered threads while it runs, with at least
// minProcsNice Ps, and none of those threads outlives the process's stop.
func TestIngestNiceEndToEnd(t *testing.T) {
	if own, _ := threadNice(t, syscall.Gettid()); own == 19 {
		t.Skip("the tests run at nice 19 already")
	}
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) }) // after the process stops
	addr, _ := kafkatest.Cluster(t)
	s := startE2ESpine(t, addr, t.TempDir(), "--ingest-nice", "19")
	if s.p.nice != 19 || runtime.GOMAXPROCS(0) < minProcsNice {
		t.Fatalf("process at nice %d with %d Ps, want 19 and at least %d", s.p.nice, runtime.GOMAXPROCS(0), minProcsNice)
	}
	var stream []e2eMsg
	for ch, vs := range readMixedValid(t) {
		for _, v := range vs {
			stream = append(stream, e2eMsg{ch: ch, value: v})
		}
	}
	e2eProduce(t, addr, stream)
	s.waitApplied(addr)
	if st := s.p.engine.Stats(); st.Events != uint64(len(stream)) {
		t.Errorf("engine applied %d events, want %d", st.Events, len(stream))
	}
	// The writer and the sink loops hold their lowered threads until stop.
	if n := lowered(t, 19); len(n) < 2 {
		t.Errorf("%d threads at nice 19 while running, want the writer's and the sinks'", len(n))
	}
	for _, p := range mixedPersons {
		s.checkPerson(p) // profile, identifiers and totals through the API
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	waitNoneLowered(t, "after the process stopped")
}
