package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// apply commits a batch in transactions of at most MaxTxnEvents events;
// the positions go with the last one. A transaction too big for Badger is
// split in halves and tried again.
func (e *Engine) apply(ctx context.Context, b *canon.Batch, encoded []store.EncodedEvent) error {
	events := b.Events
	size := e.cfg.MaxTxnEvents
	for {
		n := min(size, len(events))
		last := n == len(events)
		err := e.applyTxn(events[:n], encoded[:n], b.Positions, last)
		if errors.Is(err, store.ErrTxnTooBig) && n > 1 {
			size = n / 2
			continue
		}
		if err != nil {
			return err
		}
		events, encoded = events[n:], encoded[n:]
		if last {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// encodeEvents encodes a batch's events for the store (store.EncodeEvent)
// on the caller's goroutine, so the single writer does not: nothing
// changes an event between here and its filing. An event that fails to
// encode gets nil, and the writer reports the error.
func encodeEvents(events []canon.Event) []store.EncodedEvent {
	out := make([]store.EncodedEvent, len(events))
	for i := range events {
		out[i], _ = store.EncodeEvent(&events[i])
	}
	return out
}

func (e *Engine) applyTxn(events []canon.Event, encoded []store.EncodedEvent, pos map[canon.Partition]int64, last bool) error {
	start := time.Now()
	var applied, dups []canon.Channel
	var logs []canon.LogType
	var trimmed uint64
	// Asynchronous: the next transaction is built while Badger writes this
	// one. Positions go with the events, so a commit lost to a crash is
	// applied again from the broker on restart.
	err := e.st.UpdateAsync(e.cfg.Now(), func(tx *store.Txn) error {
		var err error
		if trimmed, err = e.storeCursors(tx); err != nil {
			return err
		}
		applied, dups = applied[:0], dups[:0]
		var touched []uint64
		for i := range events {
			ev := &events[i]
			seen, err := tx.Seen(ev.Channel, ev.MessageID)
			if err != nil {
				return err
			}
			if seen {
				dups = append(dups, ev.Channel)
				continue
			}
			if err := tx.MarkSeen(ev.Channel, ev.MessageID); err != nil {
				return err
			}
			comps, err := e.applyEvent(tx, ev, encoded[i])
			if err != nil {
				return err
			}
			for _, c := range comps {
				if !slices.Contains(touched, c) {
					touched = append(touched, c)
				}
			}
			applied = append(applied, ev.Channel)
		}
		if err := e.finalizeAll(tx, touched); err != nil {
			return err
		}
		if last {
			for p, off := range pos {
				if err := tx.SetPosition(p, off); err != nil {
					return err
				}
			}
		}
		logs = logs[:0]
		for _, c := range tx.Pending() {
			if c.Log != nil {
				logs = append(logs, c.Log.Type)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: apply: %w", err)
	}
	e.cursorsStored(trimmed)
	e.m.applySec.Observe(time.Since(start).Seconds())
	for _, ch := range applied {
		e.m.events.WithLabelValues(string(ch)).Inc()
	}
	for _, ch := range dups {
		e.m.duplicates.WithLabelValues(string(ch)).Inc()
	}
	for _, t := range logs {
		e.m.identity.WithLabelValues(string(t)).Inc()
		switch t {
		case canon.LogMerge:
			e.merges.Add(1)
		case canon.LogConflict:
			e.conflicts.Add(1)
		}
	}
	e.events.Add(uint64(len(applied)))
	e.duplicates.Add(uint64(len(dups)))
	return nil
}

// applyEvent resolves one event and folds it into its profile. It returns
// the components whose profiles changed.
func (e *Engine) applyEvent(tx *store.Txn, ev *canon.Event, encoded store.EncodedEvent) ([]uint64, error) {
	if ev.Kind == canon.KindErasure {
		// The CIAM names its own user: erase whoever holds the identifiers,
		// except another registered customer, whose user_id or crm_id the
		// request does not name, holding one the user shared (a family
		// email). A request naming no user_id or crm_id erases whoever
		// holds its identifiers. The request itself is not kept.
		ids := make([]canon.Identifier, 0, len(ev.Identifiers))
		spare := graph.SpareNone
		for _, o := range ev.Identifiers {
			ids = append(ids, o.Identifier)
			if o.Type == canon.UserID || o.Type == canon.CRMID {
				spare = graph.SpareUnnamed
			}
		}
		erased, err := e.graph.EraseIdentifiers(tx, ids, spare, "erasure requested by the CIAM")
		if err != nil {
			return nil, err
		}
		e.m.erasures.Add(float64(len(erased)))
		var touched []uint64
		for _, er := range erased {
			touched = append(touched, er.Touched...)
		}
		return touched, nil
	}
	res, err := e.graph.Resolve(tx, ev)
	if err != nil {
		return nil, err
	}
	switch {
	case res.Suppressed:
		e.m.dropped.WithLabelValues(string(ev.Channel), "erased_subject").Inc()
		e.m.erasures.Add(float64(len(res.Erased)))
		return res.Touched, nil
	case res.Comp == 0 && len(ev.Identifiers) > 0:
		// Every identifier is quarantined: junk shared by many, which
		// names nobody. The event is parked: filed under its first
		// identifier with no profile, and written for analytics without
		// one (an order still counts in its channel's revenue). If an
		// admin releases the value, it is folded into the value's
		// profile (graph.Release); its message id is marked seen, so a
		// redelivery changes nothing either way.
		e.m.parked.WithLabelValues(string(ev.Channel)).Inc()
		anchor := e.graph.Sort(ev.Identifiers)[0].Identifier
		rec := &canon.EventRecord{Event: *ev, Anchor: anchor}
		if err := tx.PutEventRecord(graph.ParkedKey(anchor.Key()), rec, false, encoded); err != nil {
			return nil, err
		}
		if ev.GroupID != "" {
			if err := e.joinAccount(tx, ev, ""); err != nil {
				return nil, err
			}
		}
		return res.Touched, nil
	case res.Comp == 0:
		return res.Touched, nil
	}
	st, err := tx.Profile(res.Comp)
	if err != nil {
		return nil, err
	}
	st.AddEvent(ev)
	tx.PutProfile(st)
	anchor, _ := canon.ParseKey(res.Anchor)
	rec := &canon.EventRecord{Event: *ev, ProfileID: st.ID, Anchor: anchor}
	if err := tx.PutEventRecord(res.Anchor, rec, e.cfg.restricted(st.Consent), encoded); err != nil {
		return nil, err
	}
	touched := res.Touched
	if ev.GroupID != "" {
		if err := e.joinAccount(tx, ev, st.ID); err != nil {
			return nil, err
		}
	}
	evidence := &canon.Evidence{Channel: ev.Channel, MessageID: ev.MessageID, Time: ev.Time, Trust: canon.Verified}
	if ev.Link != nil {
		// A confirmed link settles any candidate for the same pair.
		if err := tx.DeleteCandidate(ev.Link.A.Key(), ev.Link.B.Key()); err != nil {
			return nil, err
		}
	}
	if ev.Unlink != nil {
		more, _, err := e.graph.Unlink(tx, ev.Unlink.A, ev.Unlink.B, evidence)
		if err != nil {
			return nil, err
		}
		touched = append(touched, more...)
	}
	return touched, nil
}
