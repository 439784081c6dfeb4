package bench

import (
	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/schemas/canon"
)

// ClusterFunc names the cluster (a Spine profile id, a peer's component
// label) that holds a normalized identifier; ok is false when none does.
type ClusterFunc func(id canon.Identifier) (cluster string, ok bool)

// Accuracy is how well a clustering of identifiers matches the ground
// truth, pairwise: a pair of scored identifiers is a true pair when one
// person owns both, and a found pair when one cluster holds both.
//
// Scored identifiers are those of Truth.Persons and Truth.Orphans (each
// orphan device is a person of its own). Shared identifiers (a family
// tablet) and junk belong to nobody and are excluded, as is any value the
// truth lists under two persons. Identifiers in a cluster that are not
// scored (shared, junk, probes) do not make pairs.
type Accuracy struct {
	Persons     int // persons with at least one scored identifier
	Identifiers int // scored identifiers
	Missing     int // scored identifiers no cluster holds
	Excluded    int // identifiers left out: shared, junk or listed twice

	TruePairs  int64 // pairs owned by one person
	FoundPairs int64 // pairs held by one cluster
	Correct    int64 // pairs that are both

	Precision float64 // Correct / FoundPairs (1 when nothing was paired)
	Recall    float64 // Correct / TruePairs (1 when nothing should be)

	// WrongClusters counts clusters holding identifiers of more than one
	// person; MergedPersons the persons in them.
	WrongClusters int
	MergedPersons int
	// SplitPersons counts persons whose identifiers are not all in one
	// cluster. A missing identifier counts as a cluster of its own, so a
	// person with one lost identifier is split.
	SplitPersons int
}

// Score compares cluster with the truth. It makes one call of cluster per
// scored identifier and counts pairs through the person × cluster
// contingency table, so it is linear in the identifiers, not quadratic:
// a group of n identifiers holds n(n-1)/2 pairs.
func Score(t gen.Truth, cluster ClusterFunc) Accuracy {
	excluded := map[canon.Identifier]bool{}
	for _, s := range t.Shared {
		excluded[s.Identifier] = true
	}
	for _, j := range t.Junk {
		excluded[j] = true
	}
	owner := map[canon.Identifier]int{}
	persons := append(append([]gen.PersonTruth(nil), t.Persons...), t.Orphans...)
	for p, pt := range persons {
		for _, id := range pt.Identifiers {
			if excluded[id] {
				continue
			}
			if q, ok := owner[id]; ok && q != p {
				// Two persons claim it: it is shared, whatever the truth says.
				excluded[id] = true
				delete(owner, id)
				continue
			}
			owner[id] = p
		}
	}

	type cell struct {
		person  int
		cluster string
	}
	var a Accuracy
	cells := map[cell]int64{}
	perPerson := map[int]int64{}
	perCluster := map[string]int64{}
	clustersOf := map[int]map[string]bool{}
	personsOf := map[string]map[int]bool{}
	missingOf := map[int]int{}
	seen := map[canon.Identifier]bool{}
	for p, pt := range persons {
		for _, id := range pt.Identifiers {
			if excluded[id] || seen[id] {
				continue
			}
			seen[id] = true
			a.Identifiers++
			perPerson[p]++
			c, ok := cluster(id)
			if !ok {
				a.Missing++
				missingOf[p]++
				continue
			}
			cells[cell{p, c}]++
			perCluster[c]++
			if clustersOf[p] == nil {
				clustersOf[p] = map[string]bool{}
			}
			clustersOf[p][c] = true
			if personsOf[c] == nil {
				personsOf[c] = map[int]bool{}
			}
			personsOf[c][p] = true
		}
	}
	a.Excluded = len(excluded)
	pairs := func(n int64) int64 { return n * (n - 1) / 2 }
	for _, n := range cells {
		a.Correct += pairs(n)
	}
	for p, n := range perPerson {
		a.TruePairs += pairs(n)
		if len(clustersOf[p])+missingOf[p] > 1 {
			a.SplitPersons++
		}
	}
	a.Persons = len(perPerson)
	for _, n := range perCluster {
		a.FoundPairs += pairs(n)
	}
	merged := map[int]bool{}
	for _, ps := range personsOf {
		if len(ps) > 1 {
			a.WrongClusters++
			for p := range ps {
				merged[p] = true
			}
		}
	}
	a.MergedPersons = len(merged)
	a.Precision, a.Recall = 1, 1
	if a.FoundPairs > 0 {
		a.Precision = float64(a.Correct) / float64(a.FoundPairs)
	}
	if a.TruePairs > 0 {
		a.Recall = float64(a.Correct) / float64(a.TruePairs)
	}
	return a
}
