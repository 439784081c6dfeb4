package replica

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/spinecdp/spine/schemas/canon"
)

var (
	propSeed = flag.Uint64("seed", 0, "TestIndexProperty: replay this seed only (0: seeds 1 to -runs)")
	propRuns = flag.Int("runs", 400, "TestIndexProperty: how many seeds to try")
)

// TestIndexProperty drives a model of the engine ("truth") through random
// merges, moves, splits and erasures, and delivers the profile records it
// emits as Kafka would: each profile's in order, with replays (a sink
// resending from an earlier point), and interleaved at random across
// profiles (they are on different partitions). Whatever the interleaving,
// the index must then answer exactly as the truth's final state. A
// failure names its seed: go test ./sinks/replica -run Property -seed N.
func TestIndexProperty(t *testing.T) {
	seeds := []uint64{*propSeed}
	if *propSeed == 0 {
		seeds = seeds[:0]
		for s := range uint64(*propRuns) {
			seeds = append(seeds, s+1)
		}
	}
	for _, seed := range seeds {
		if !propertyRun(t, seed) {
			t.Fatalf("seed %d failed; replay it with: go test ./sinks/replica -run Property -seed %d -v", seed, seed)
		}
	}
}

// propertyRun runs one seed and reports whether it passed.
func propertyRun(t *testing.T, seed uint64) bool {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	tr := newTruth(rng)
	for range 20 + rng.IntN(60) {
		tr.step()
	}
	ok := true
	fail := func(format string, args ...any) {
		if ok {
			t.Logf("seed %d, history:\n  %s", seed, strings.Join(tr.log, "\n  "))
		}
		ok = false
		t.Errorf("seed %d: "+format, append([]any{seed}, args...)...)
	}

	// The stream as delivered, and the same stream compacted (only each
	// profile's last record), as a replica starting late reads it.
	x := NewIndex(0)
	for _, s := range tr.deliveries() {
		if err := x.Apply(s.pid, s.value, s.seq); err != nil {
			fail("Apply(%s, seq %d): %v", s.pid, s.seq, err)
			return false
		}
	}
	compacted := NewIndex(0)
	var lasts []step
	for _, pid := range slices.Sorted(maps.Keys(tr.recs)) {
		recs := tr.recs[pid]
		lasts = append(lasts, recs[len(recs)-1])
	}
	rng.Shuffle(len(lasts), func(i, j int) { lasts[i], lasts[j] = lasts[j], lasts[i] })
	for _, s := range lasts {
		if err := compacted.Apply(s.pid, s.value, s.seq); err != nil {
			fail("compacted: Apply(%s, seq %d): %v", s.pid, s.seq, err)
			return false
		}
	}

	for name, idx := range map[string]*Index{"delivered": x, "compacted": compacted} {
		lookups, profiles := tr.answers()
		for id, exp := range lookups {
			if got := answer(idx.LookupJSON(id)); got != exp {
				fail("%s: LookupJSON(%s %s) = %q, want %q", name, id.Type, id.Value, got, exp)
			}
		}
		for pid, exp := range profiles {
			if got := answer(idx.ProfileJSON(pid)); got != exp {
				fail("%s: ProfileJSON(%s) = %q, want %q", name, pid, got, exp)
			}
		}
		s := idx.Size()
		if s.Profiles != len(tr.live) || s.Identifiers != tr.held() || s.Aliases != tr.absorbed() {
			fail("%s: Size() = %+v, want %d profiles, %d identifiers, %d aliases", name, s, len(tr.live), tr.held(), tr.absorbed())
		}
		checkAccounting(t, idx)
	}
	return ok && !t.Failed()
}

// truth is a model of the engine's profiles: each identifier is held by
// at most one live profile, each absorbed id by one survivor. Every change
// emits the full record of each profile it touches, with increasing seqs.
type truth struct {
	rng  *rand.Rand
	seq  uint64
	pool []canon.Identifier
	live map[string]*member
	made int               // profile ids handed out: p0, p1, ...
	recs map[string][]step // every record emitted, by profile id
	log  []string
}

type member struct {
	ids    []canon.Identifier
	merged []string
}

func newTruth(rng *rand.Rand) *truth {
	tr := &truth{rng: rng, live: map[string]*member{}, recs: map[string][]step{}}
	for i := range 4 + rng.IntN(6) {
		t := []canon.IDType{canon.Email, canon.Phone, canon.DeviceID, canon.UserID}[i%4]
		tr.pool = append(tr.pool, canon.Identifier{Type: t, Value: fmt.Sprintf("v%d", i/4)})
	}
	return tr
}

func (tr *truth) logf(format string, args ...any) {
	tr.log = append(tr.log, fmt.Sprintf(format, args...))
}

// emit publishes pid's current record (or its tombstone, when it is not
// live) at the next seq.
func (tr *truth) emit(pid string) {
	tr.seq++
	m := tr.live[pid]
	if m == nil {
		tr.recs[pid] = append(tr.recs[pid], tomb(pid, tr.seq))
		tr.logf("seq %d: %s tombstone", tr.seq, pid)
		return
	}
	tr.recs[pid] = append(tr.recs[pid], put(pid, tr.seq, m.ids, m.merged...))
	var vs []string
	for _, id := range m.ids {
		vs = append(vs, string(id.Type)+":"+id.Value)
	}
	tr.logf("seq %d: %s ids %v merged %v", tr.seq, pid, vs, m.merged)
}

// emitAll emits the records of a change that touched several profiles,
// in an order of the engine's choosing: any.
func (tr *truth) emitAll(pids ...string) {
	tr.rng.Shuffle(len(pids), func(i, j int) { pids[i], pids[j] = pids[j], pids[i] })
	for _, p := range pids {
		tr.emit(p)
	}
}

func (tr *truth) holder(id canon.Identifier) string {
	for pid, m := range tr.live {
		if slices.Contains(m.ids, id) {
			return pid
		}
	}
	return ""
}

func (tr *truth) pickLive() string {
	if len(tr.live) == 0 {
		return ""
	}
	pids := slices.Sorted(maps.Keys(tr.live)) // map order is not the seed's
	return pids[tr.rng.IntN(len(pids))]
}

// step makes one random change.
func (tr *truth) step() {
	id := tr.pool[tr.rng.IntN(len(tr.pool))]
	switch op := tr.rng.IntN(10); {
	case op < 2 || len(tr.live) == 0: // a new person, with an identifier taken from whoever held it
		if tr.made >= 8 {
			return
		}
		pid := fmt.Sprintf("p%d", tr.made)
		tr.made++
		tr.logf("new %s with %s:%s", pid, id.Type, id.Value)
		from := tr.take(id)
		tr.live[pid] = &member{ids: []canon.Identifier{id}}
		tr.emitAll(append(from, pid)...)
	case op < 4: // an identifier joins a profile, moving from another
		pid := tr.pickLive()
		if slices.Contains(tr.live[pid].ids, id) {
			tr.logf("touch %s", pid)
			tr.emit(pid) // a trait change: same membership, newer record
			return
		}
		tr.logf("%s:%s to %s", id.Type, id.Value, pid)
		from := tr.take(id)
		tr.live[pid].ids = append(tr.live[pid].ids, id)
		tr.emitAll(append(from, pid)...)
	case op < 5: // an identifier released (quarantined junk, say)
		pid := tr.holder(id)
		if pid == "" {
			return
		}
		tr.logf("release %s:%s from %s", id.Type, id.Value, pid)
		tr.take(id)
		tr.emit(pid)
	case op < 7: // a merge: the survivor takes the other's identifiers and absorbed ids
		a, b := tr.pickLive(), tr.pickLive()
		if a == b {
			return
		}
		tr.logf("%s absorbs %s", a, b)
		ma, mb := tr.live[a], tr.live[b]
		ma.ids = append(ma.ids, mb.ids...)
		ma.merged = append(append(ma.merged, b), mb.merged...)
		slices.Sort(ma.merged)
		delete(tr.live, b)
		tr.emitAll(a, b)
	case op < 8: // an unlink: an absorbed id comes back with some identifiers
		pid := tr.pickLive()
		m := tr.live[pid]
		if len(m.merged) == 0 {
			return
		}
		back := m.merged[tr.rng.IntN(len(m.merged))]
		m.merged = slices.DeleteFunc(m.merged, func(s string) bool { return s == back })
		nb := &member{}
		m.ids = slices.DeleteFunc(m.ids, func(id canon.Identifier) bool {
			if tr.rng.IntN(2) == 0 {
				nb.ids = append(nb.ids, id)
				return true
			}
			return false
		})
		tr.live[back] = nb
		tr.logf("%s splits off %s again", pid, back)
		tr.emitAll(pid, back)
	case op < 9: // an erasure: the profile's and its absorbed ids' tombstones, one seq
		pid := tr.pickLive()
		m := tr.live[pid]
		delete(tr.live, pid)
		tr.logf("erase %s", pid)
		tr.emit(pid)
		for _, a := range m.merged {
			tr.recs[a] = append(tr.recs[a], tomb(a, tr.seq))
		}
	default:
		pid := tr.pickLive()
		tr.logf("touch %s", pid)
		tr.emit(pid)
	}
}

// take removes id from the profile holding it and returns that profile,
// whose record must then be emitted.
func (tr *truth) take(id canon.Identifier) []string {
	pid := tr.holder(id)
	if pid == "" {
		return nil
	}
	m := tr.live[pid]
	m.ids = slices.DeleteFunc(m.ids, func(i canon.Identifier) bool { return i == id })
	return []string{pid}
}

// deliveries returns every emitted record as a consumer reads them: each
// profile's records in order, some of them read again (an engine that
// restarts resends from a record up to the last it sent; a lone older
// record is a redelivery too), and the profiles' streams interleaved at
// random.
func (tr *truth) deliveries() []step {
	pids := slices.Sorted(maps.Keys(tr.recs))
	queues := make([][]step, len(pids))
	for i, pid := range pids {
		recs := tr.recs[pid]
		for k := range recs {
			queues[i] = append(queues[i], recs[k])
			if tr.rng.IntN(4) == 0 {
				queues[i] = append(queues[i], recs[tr.rng.IntN(k+1):k+1]...)
			}
			// A lone older record, read again after a newer one. Not after
			// a tombstone: the index keeps nothing of a removed profile, so
			// it could not tell that record from a new life of the id.
			if recs[k].value != nil && k > 0 && tr.rng.IntN(4) == 0 {
				queues[i] = append(queues[i], recs[tr.rng.IntN(k)])
			}
		}
	}
	var out []step
	for {
		var open []int
		for i, q := range queues {
			if len(q) > 0 {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			return out
		}
		i := open[tr.rng.IntN(len(open))]
		out = append(out, queues[i][0])
		queues[i] = queues[i][1:]
	}
}

// lastSeq is the seq of pid's last record.
func (tr *truth) lastSeq(pid string) uint64 {
	recs := tr.recs[pid]
	return recs[len(recs)-1].seq
}

// answers is what lookups must return: every identifier of the pool and
// every profile id ever handed out, as "pid@seq" of the final holder's
// last record, or "" for not found.
func (tr *truth) answers() (map[canon.Identifier]string, map[string]string) {
	lookups := map[canon.Identifier]string{}
	for _, id := range tr.pool {
		lookups[id] = ""
	}
	profiles := map[string]string{}
	for i := range tr.made {
		profiles[fmt.Sprintf("p%d", i)] = ""
	}
	for pid, m := range tr.live {
		a := fmt.Sprintf("%s@%d", pid, tr.lastSeq(pid))
		profiles[pid] = a
		for _, id := range m.ids {
			lookups[id] = a
		}
		for _, g := range m.merged {
			profiles[g] = a
		}
	}
	return lookups, profiles
}

func (tr *truth) held() int {
	n := 0
	for _, m := range tr.live {
		n += len(m.ids)
	}
	return n
}

func (tr *truth) absorbed() int {
	n := 0
	for _, m := range tr.live {
		n += len(m.merged)
	}
	return n
}

// TestIndexPropertyBound: with a bound, an accepted record never takes
// the estimate past it, and a refused one (ErrFull) changes nothing.
func TestIndexPropertyBound(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 7))
		tr := newTruth(rng)
		for range 60 {
			tr.step()
		}
		bound := int64(500 + rng.IntN(3000))
		x := NewIndex(bound)
		for _, s := range tr.deliveries() {
			before := x.Size()
			err := x.Apply(s.pid, s.value, s.seq)
			switch {
			case errors.Is(err, ErrFull):
				if got := x.Size(); got != before {
					t.Fatalf("seed %d: ErrFull changed Size from %+v to %+v", seed, before, got)
				}
			case err != nil:
				t.Fatalf("seed %d: Apply(%s, seq %d): %v", seed, s.pid, s.seq, err)
			}
			if b := x.Size().Bytes; b > bound {
				t.Fatalf("seed %d: Bytes = %d after Apply(%s, seq %d), bound %d", seed, b, s.pid, s.seq, bound)
			}
			checkAccounting(t, x)
		}
	}
}
