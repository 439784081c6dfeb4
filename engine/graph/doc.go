// Package graph owns the identity graph: which identifiers belong to which
// profile, and the rule that decides it (DESIGN section 3). It is a
// union-find kept in the store: every identifier maps straight to its
// component (one read per lookup), and a union relabels the smaller side,
// so no identifier moves more than O(log n) times. Links are stored with
// their evidence so components can be rebuilt when a link is removed.
package graph
