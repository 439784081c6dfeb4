package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/schemas/canon"
)

// TestCommandAppliesQueuedBatchFirst: a batch Pipelined.Apply accepted
// (returned nil) is applied before a command that comes after it, also
// while the engine is back-pressured and takes no new batches: here the
// unlink of the link that batch makes must find it.
func TestCommandAppliesQueuedBatchFirst(t *testing.T) {
	for _, pressed := range []bool{false, true} {
		t.Run(fmt.Sprint("backpressured=", pressed), func(t *testing.T) {
			cfg := engine.DefaultConfig(t.TempDir())
			cfg.Store.SyncWrites = false
			cfg.MaxBacklog = 1000
			cfg.Sinks = []string{"never-acks"}
			e, stop := startCfg(t, cfg, nil)
			defer stop()
			p := e.Pipelined()
			if pressed {
				var fill []canon.Event
				for i := range 1200 {
					fill = append(fill, ev(canon.Web, fmt.Sprint("f", i), canon.KindPage, 1, obs(canon.AnonymousID, fmt.Sprint("a", i))))
				}
				if err := p.Apply(t.Context(), canon.Batch{Events: fill}); err != nil {
					t.Fatal(err)
				}
				// The sink never acks: wait until the writer holds back.
				deadline := time.Now().Add(10 * time.Second)
				for e.Stats().Backlog <= cfg.MaxBacklog {
					if time.Now().After(deadline) {
						t.Fatalf("not back-pressured: backlog %d", e.Stats().Backlog)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			login := ev(canon.Mobile, "l1", canon.KindScreen, 2, obs(canon.UserID, "u1"), obs(canon.DeviceID, "d1"))
			if err := p.Apply(t.Context(), canon.Batch{Events: []canon.Event{login}}); err != nil {
				t.Fatalf("queueing: %v", err)
			}
			_, err := e.Do(t.Context(), canon.Command{Kind: canon.CmdUnlink,
				Pair: &canon.Pair{A: canon.Identifier{Type: canon.DeviceID, Value: "d1"}, B: canon.Identifier{Type: canon.UserID, Value: "u1"}}})
			if err != nil {
				t.Errorf("unlink after Apply returned: %v (the accepted batch was not applied first)", err)
			}
		})
	}
}
