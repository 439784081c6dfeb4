package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenAfterCrashBetweenCreateAndSize reproduces a kill that lands after
// Badger created a memtable or value-log file and before it sized it.
func TestOpenAfterCrashBetweenCreateAndSize(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	opts.SyncWrites = false
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(time.Now(), func(tx *Txn) error { tx.SetAlias("prf_1", 7); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00009.mem", "000002.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(opts)
	if err != nil {
		t.Fatalf("Open after a crash left empty files: %v", err)
	}
	defer s.Close()
	if c, err := s.LookupAlias("prf_1"); err != nil || c != 7 {
		t.Errorf("LookupAlias after reopen = %d, %v; want 7", c, err)
	}
}
