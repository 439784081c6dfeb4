package store

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// logMappings returns, for each mapping of a value log or memtable log
// under dir, whether its VmFlags hold rr (MADV_RANDOM).
func logMappings(t *testing.T, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, dir+"/"); i >= 0 && isLogFile(line[i:]) {
			rng, _, _ := strings.Cut(line, " ")
			cur = rng + " " + filepath.Base(line[i:])
			continue
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			if cur != "" {
				out[cur] = slices.Contains(strings.Fields(flags), "rr")
			}
			cur = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNoReadAround: with Options.NoReadAround every mapping of Badger's
// logs is advised for random access, those of memtables created while the
// store runs included, also when the state directory is reached through a
// symbolic link; without it none is.
func TestNoReadAround(t *testing.T) {
	for _, tc := range []struct {
		name        string
		on, symlink bool
	}{{"on", true, false}, {"off", false, false}, {"on through a symlink", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			on := tc.on
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			open := dir
			if tc.symlink {
				open = filepath.Join(t.TempDir(), "state")
				if err := os.Symlink(dir, open); err != nil {
					t.Fatal(err)
				}
			}
			opts := DefaultOptions(open)
			opts.SyncWrites = false
			opts.MemTableBytes = 1 << 20
			opts.NoReadAround = on
			s, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.ReadAround() == on {
				t.Fatalf("ReadAround = %v with NoReadAround %v", s.ReadAround(), on)
			}
			before, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
			// Small values fill memtables, which rotate; large ones go to
			// the value log.
			small, large := make([]byte, 16), make([]byte, 512)
			for batch := range 64 {
				err := s.Update(time.Now(), func(tx *Txn) error {
					for i := range 1024 {
						v := small
						if i%64 == 0 {
							v = large
						}
						binary.BigEndian.PutUint64(v, uint64(batch<<16|i))
						if err := tx.set([]byte(fmt.Sprintf("ztest-%d-%d", batch, i)), v); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			after, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
			if len(slices.DeleteFunc(after, func(p string) bool { return slices.Contains(before, p) })) == 0 {
				t.Fatalf("want a memtable created after the store opened; memtable logs %q at open, %q now", before, after)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				m := logMappings(t, dir)
				var kinds []string
				advised := 0
				for name, rr := range m {
					kinds = append(kinds, filepath.Ext(name))
					if rr {
						advised++
					}
				}
				if !slices.Contains(kinds, ".vlog") || !slices.Contains(kinds, ".mem") {
					t.Fatalf("log mappings %v: want a value log and a memtable log", m)
				}
				if !on {
					if advised > 0 {
						t.Fatalf("mappings advised without NoReadAround: %v", m)
					}
					return
				}
				if advised == len(m) {
					if s.ReadAround() {
						t.Fatal("ReadAround set with every log mapping advised")
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("mappings not advised: %v", m)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestCreatedLogs(t *testing.T) {
	event := func(name string, pad int) []byte {
		b := make([]byte, unix.SizeofInotifyEvent, unix.SizeofInotifyEvent+len(name)+pad)
		binary.NativeEndian.PutUint32(b[4:8], unix.IN_CREATE)
		binary.NativeEndian.PutUint32(b[12:16], uint32(len(name)+pad))
		b = append(b, name...)
		return append(b, make([]byte, pad)...)
	}
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"none", nil, nil},
		{"memtable", event("00007.mem", 7), []string{"00007.mem"}},
		{"value log among tables", cat(event("000012.sst", 6), event("000003.vlog", 5), event("MANIFEST", 8)), []string{"000003.vlog"}},
		{"two", cat(event("00008.mem", 7), event("000004.vlog", 4)), []string{"00008.mem", "000004.vlog"}},
		{"cut short", event("00009.mem", 7)[:unix.SizeofInotifyEvent+3], nil},
		{"header only", make([]byte, unix.SizeofInotifyEvent-1), nil},
	} {
		if got := createdLogs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
