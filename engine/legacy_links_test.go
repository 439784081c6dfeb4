//go:build invariants

package engine_test

import (
	"testing"
	"time"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// TestLinksStoredBothWaysByOlderStores runs this build on a state whose
// links are stored as format 5 and older stored them, under both idkeys:
// the graph view lists each link once, an unlink splits and an erasure
// removes links, both copies of each, as the invariants check.
func TestLinksStoredBothWaysByOlderStores(t *testing.T) {
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Store.SyncWrites = false
	e, stop := startCfg(t, cfg, quietLog)
	apply(t, e,
		ev(canon.Mobile, "l1", canon.KindLogin, 1, obs(canon.UserID, "u1"), obs(canon.DeviceID, "d1")),
		ev(canon.Web, "l2", canon.KindIdentify, 2, obs(canon.AnonymousID, "a1"), obs(canon.UserID, "u1"), obs(canon.Email, "p@x.io")),
		ev(canon.Web, "m1", canon.KindIdentify, 3, obs(canon.UserID, "u2"), obs(canon.Email, "q@x.io"), obs(canon.AnonymousID, "a2")),
	)
	stop()

	st, err := store.Open(cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StoreLinksBothWays(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	e, stop = startCfg(t, cfg, quietLog)
	defer stop()
	p := lookup(t, e, canon.UserID, "u1")
	if g := graphOf(t, e, p.ID); len(g.Links) != 3 {
		t.Fatalf("graph view lists %d links, want the 3 once each: %+v", len(g.Links), g.Links)
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.UserID, "u1"), B: id(canon.DeviceID, "d1")}})
	if lookup(t, e, canon.DeviceID, "d1").ID == lookup(t, e, canon.UserID, "u1").ID {
		t.Error("the unlink did not split the profile")
	}
	if g := graphOf(t, e, p.ID); len(g.Links) != 2 {
		t.Errorf("after the unlink the graph view lists %d links, want 2: %+v", len(g.Links), g.Links)
	}
	other := lookup(t, e, canon.UserID, "u2")
	if rc := do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: other.ID}).Receipt; rc == nil || rc.Links != 2 {
		t.Errorf("erasure receipt %+v, want 2 links", rc)
	}
	checkInvariants(t, e)
}
