// Package profile owns what a unified profile holds and how it changes:
// survivorship of traits, exact computed values, consent per purpose, and
// the merge of two profiles. Everything here is pure.
//
// A profile's state is a fold over its events and identifiers, and the fold
// is commutative and associative: the same events in any order, folded one
// by one or folded into two profiles that later merge, give the same state.
// That is what makes arrival order, replays and merges harmless, and what
// lets a split rebuild each side from its own events.
package profile
