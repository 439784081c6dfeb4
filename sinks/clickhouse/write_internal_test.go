package clickhouse

import (
	"maps"
	"slices"
	"testing"

	"github.com/spinecdp/spine/schemas/canon"
)

func TestSupersededProfiles(t *testing.T) {
	prof := func(id string) canon.Change {
		return canon.Change{Kind: canon.ChangeProfile, Profile: &canon.Profile{ID: id}}
	}
	del := func(id string) canon.Change {
		return canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: id}}
	}
	ev := canon.Change{Kind: canon.ChangeEvent, Event: &canon.EventRecord{ProfileID: "a"}}
	erase := canon.Change{Kind: canon.ChangeErase, Erase: &canon.Erasure{ProfileIDs: []string{"z"}}}
	for _, c := range []struct {
		name  string
		batch []canon.Change
		want  []int
	}{
		{"one version each", []canon.Change{prof("a"), ev, prof("b")}, nil},
		{"older versions go", []canon.Change{prof("a"), prof("b"), ev, prof("a"), prof("a")}, []int{0, 3}},
		{"a deletion keeps what came before it", []canon.Change{prof("a"), del("a"), prof("a"), prof("a")}, []int{2}},
		{"another profile's deletion does not", []canon.Change{prof("a"), del("b"), prof("a")}, []int{0}},
		{"a batch with an erasure is written whole", []canon.Change{prof("a"), prof("a"), erase}, nil},
		{"empty", nil, nil},
	} {
		got := slices.Sorted(maps.Keys(supersededProfiles(c.batch)))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: superseded %v, want %v", c.name, got, c.want)
		}
	}
}
