package bench

import (
	"strconv"
	"testing"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/schemas/canon"
)

func ids(vals ...string) []canon.Identifier {
	out := make([]canon.Identifier, len(vals))
	for i, v := range vals {
		out[i] = canon.Identifier{Type: canon.AnonymousID, Value: v}
	}
	return out
}

// fixture: person 0 owns a b c, person 1 owns d e, orphan owns f; "t" is a
// shared tablet and "junk" a junk value.
func fixture() gen.Truth {
	return gen.Truth{
		Persons: []gen.PersonTruth{{Person: 0, Identifiers: ids("a", "b", "c")}, {Person: 1, Identifiers: ids("d", "e")}},
		Orphans: []gen.PersonTruth{{Person: gen.NoPerson, Identifiers: ids("f")}},
		Shared:  []gen.SharedIdentifier{{Identifier: ids("t")[0], Persons: []int{0, 1}}},
		Junk:    ids("junk"),
	}
}

func clusters(m map[string]string) ClusterFunc {
	return func(id canon.Identifier) (string, bool) {
		c, ok := m[id.Value]
		return c, ok
	}
}

func TestScore(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]string
		want Accuracy
	}{
		{
			name: "perfect",
			m:    map[string]string{"a": "P", "b": "P", "c": "P", "d": "Q", "e": "Q", "f": "R"},
			want: Accuracy{Persons: 3, Identifiers: 6, Excluded: 2, TruePairs: 4, FoundPairs: 4, Correct: 4,
				Precision: 1, Recall: 1},
		},
		{
			name: "one wrong merge",
			m:    map[string]string{"a": "P", "b": "P", "c": "P", "d": "P", "e": "P", "f": "R"},
			// P holds 5 identifiers: 10 pairs, 4 of them true.
			want: Accuracy{Persons: 3, Identifiers: 6, Excluded: 2, TruePairs: 4, FoundPairs: 10, Correct: 4,
				Precision: 0.4, Recall: 1, WrongClusters: 1, MergedPersons: 2},
		},
		{
			name: "one split",
			m:    map[string]string{"a": "P", "b": "P", "c": "S", "d": "Q", "e": "Q", "f": "R"},
			want: Accuracy{Persons: 3, Identifiers: 6, Excluded: 2, TruePairs: 4, FoundPairs: 2, Correct: 2,
				Precision: 1, Recall: 0.5, SplitPersons: 1},
		},
		{
			name: "missing identifier splits",
			m:    map[string]string{"a": "P", "b": "P", "d": "Q", "e": "Q", "f": "R"},
			want: Accuracy{Persons: 3, Identifiers: 6, Missing: 1, Excluded: 2, TruePairs: 4, FoundPairs: 2, Correct: 2,
				Precision: 1, Recall: 0.5, SplitPersons: 1},
		},
		{
			// The tablet and the junk value sit in both profiles' clusters
			// (or glue them); they make no pairs and the people stay apart.
			name: "shared and junk excluded",
			m:    map[string]string{"a": "P", "b": "P", "c": "P", "d": "Q", "e": "Q", "f": "R", "t": "P", "junk": "Q"},
			want: Accuracy{Persons: 3, Identifiers: 6, Excluded: 2, TruePairs: 4, FoundPairs: 4, Correct: 4,
				Precision: 1, Recall: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(fixture(), clusters(tt.m)); got != tt.want {
				t.Errorf("Score() = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

// An identifier the truth lists under two persons is treated as shared.
func TestScoreIdentifierOfTwoPersons(t *testing.T) {
	tr := gen.Truth{Persons: []gen.PersonTruth{{Identifiers: ids("a", "x")}, {Identifiers: ids("b", "x")}}}
	got := Score(tr, clusters(map[string]string{"a": "P", "b": "Q", "x": "P"}))
	if got.Identifiers != 2 || got.Excluded != 1 || got.Precision != 1 || got.Recall != 1 {
		t.Errorf("Score() = %+v, want 2 identifiers, 1 excluded, precision and recall 1", got)
	}
}

// Score is linear: a 100,000-identifier person costs no pair enumeration.
func TestScoreLarge(t *testing.T) {
	var vals []string
	for i := range 100_000 {
		vals = append(vals, strconv.Itoa(i))
	}
	tr := gen.Truth{Persons: []gen.PersonTruth{{Identifiers: ids(vals...)}}}
	got := Score(tr, func(canon.Identifier) (string, bool) { return "P", true })
	if want := int64(100_000 * 99_999 / 2); got.TruePairs != want || got.Correct != want || got.Precision != 1 {
		t.Errorf("Score() = %+v, want %d correct pairs", got, want)
	}
}
