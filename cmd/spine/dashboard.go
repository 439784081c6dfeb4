package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"

	"github.com/spinecdp/spine/engine"
)

// chDashboarder is the ClickHouse sink's dashboard capability.
type chDashboarder interface {
	Dashboard(ctx context.Context) (json.RawMessage, error)
}

// chDashboardAPI is what the HTTP API serves when the ClickHouse sink is
// on: the engine's API (Graph, Export, Account, Quarantined, ... stay
// promoted) with the dashboard answered from ClickHouse. When ClickHouse
// fails, the engine's own subset ("source": "engine") is served instead,
// and the failure is logged once per outage rather than on every poll.
type chDashboardAPI struct {
	engine.API
	ch      chDashboarder
	log     *slog.Logger
	failing atomic.Bool
}

// Dashboard implements httpapi.Dashboard.
func (a *chDashboardAPI) Dashboard(ctx context.Context) (json.RawMessage, error) {
	doc, err := a.ch.Dashboard(ctx)
	if err == nil {
		if a.failing.CompareAndSwap(true, false) {
			a.log.Info("dashboard: clickhouse answers again")
		}
		return doc, nil
	}
	if ctx.Err() != nil {
		return nil, err // the client went away: nothing to fall back for
	}
	if a.failing.CompareAndSwap(false, true) {
		a.log.Warn("dashboard: clickhouse failed, serving the engine's figures until it answers", "err", err)
	}
	return a.API.Dashboard(ctx)
}
