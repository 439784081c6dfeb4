package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// joinAccount makes a profile a member of the event's B2B account and
// applies the account traits the event carries (later event time wins).
// With pid empty (a parked event, which names no profile) it only creates
// the account and applies the traits: a profile the event later counts for
// joins it when refolded.
func (e *Engine) joinAccount(tx *store.Txn, ev *canon.Event, pid string) error {
	a, err := tx.Account(ev.GroupID)
	if err != nil {
		return err
	}
	changed := false
	if a == nil {
		a, changed = &store.Account{ID: ev.GroupID}, true
	}
	if pid != "" && !slices.Contains(a.Members, pid) && len(a.Members) < store.MaxAccountMembers {
		a.Members = append(a.Members, pid)
		changed = true
	}
	for k, v := range ev.GroupTraits {
		if cur, ok := a.TraitSources[k]; ok && cur.Time.After(ev.Time) {
			continue
		}
		if a.Traits == nil {
			a.Traits, a.TraitSources = map[string]any{}, map[string]canon.TraitSource{}
		}
		a.Traits[k], a.TraitSources[k] = v, canon.TraitSource{Time: ev.Time, Channel: ev.Channel}
		changed = true
	}
	if !changed {
		return nil
	}
	return tx.SaveAccount(a)
}

// AccountView is a B2B account with its members and their roll-ups.
type AccountView struct {
	ID      string          `json:"account_id"`
	Traits  map[string]any  `json:"traits,omitempty"`
	Members []AccountMember `json:"members"`
	Rollup  Rollup          `json:"rollup"`
}

// AccountMember is one member profile, briefly.
type AccountMember struct {
	ProfileID string      `json:"profile_id"`
	Level     canon.Level `json:"identity_level"`
	Email     string      `json:"email,omitempty"`
}

// Rollup sums the members' computed values.
type Rollup struct {
	Members         int                     `json:"members"`
	OrderCount      int64                   `json:"order_count"`
	TotalSpend      canon.Amounts           `json:"total_spend"`
	RefundTotal     canon.Amounts           `json:"refund_total"`
	TicketsOpened   int64                   `json:"tickets_opened"`
	EventsByChannel map[canon.Channel]int64 `json:"events_by_channel"`
	LastSeen        string                  `json:"last_seen,omitempty"`
}

// Account returns a B2B account with its current members (absorbed member
// ids resolve to their survivors) and their roll-ups.
func (e *Engine) Account(ctx context.Context, id string) (*AccountView, error) {
	var out *AccountView
	err := e.st.View(func(r *store.Reader) error {
		a, err := r.Account(id)
		if err != nil {
			return err
		}
		if a == nil {
			return canon.ErrNotFound
		}
		out = &AccountView{ID: a.ID, Traits: a.Traits, Members: []AccountMember{}}
		ru := &out.Rollup
		ru.TotalSpend, ru.RefundTotal, ru.EventsByChannel = canon.Amounts{}, canon.Amounts{}, map[canon.Channel]int64{}
		seen := map[uint64]bool{}
		for _, pid := range a.Members {
			comp, err := r.Alias(pid)
			if err != nil {
				return err
			}
			if comp == 0 || seen[comp] {
				continue // erased, or absorbed into a member already counted
			}
			seen[comp] = true
			st, err := r.Profile(comp)
			if err != nil || st == nil {
				return err
			}
			if !slices.Contains(st.Groups, a.ID) {
				continue // split off the part whose events named the account
			}
			email, _ := st.Identifier(canon.Email)
			out.Members = append(out.Members, AccountMember{ProfileID: st.ID, Level: st.Level, Email: email})
			c := st.Computed
			ru.Members++
			ru.OrderCount += c.OrderCount
			ru.TicketsOpened += c.TicketsOpened
			for k, v := range c.TotalSpend {
				ru.TotalSpend[k] += v
			}
			for k, v := range c.RefundTotal {
				ru.RefundTotal[k] += v
			}
			for k, v := range c.EventsByChannel {
				ru.EventsByChannel[k] += v
			}
			if ls := c.LastSeen.UTC().Format("2006-01-02T15:04:05.000Z07:00"); !c.LastSeen.IsZero() && ls > ru.LastSeen {
				ru.LastSeen = ls
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("engine: account: %w", err)
	}
	return out, nil
}
