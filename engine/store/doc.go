// Package store owns Spine's state on disk: a Badger database with a
// documented key layout, the write transaction the engine's single writer
// uses, byte-bounded LRU caches in front of it, consume positions, the
// dedup window, and the change log (outbox) the sinks tail.
//
// Key layout (one-byte prefix, then the key):
//
//	i <idkey>                  -> component (8 bytes)        identifier index: one read per lookup
//	p <component>              -> profile.State (JSON)       the profile
//	x <profile id>             -> component (8 bytes)        live and absorbed profile ids
//	e <len><idkey a><idkey b>  -> canon.Evidence (binary)    links, once under the lower idkey a (both ways,
//	                                                         or JSON, in older stores)
//	v <len><idkey><seq>        -> group of canon.Event       events by anchor identifier, in groups (usually one
//	                                                         per identifier and transaction) under the first
//	                                                         event's seq, user meta the count (eventgroup.go);
//	                                                         one event per key, binary or JSON, in older stores
//	d <channel>\x00<message id>-> empty, with TTL            dedup window
//	o <topic>\x00<partition>   -> next offset (8 bytes)      consume positions
//	l <first seq><last seq>    -> []canon.Change (binary)    change log: one page per transaction; an event's
//	                                                         record refers to its group's v key and its seq, a
//	                                                         profile's to its p key at that version (pageRef),
//	                                                         instead of a copy
//	c <sink>                   -> acked seq (8 bytes)        sink cursors
//	m <name>                   -> uint64                     counters
//	h <keyed hash>             -> erasure time               erased identifiers, hashed only
//	q <idkey>                  -> Quarantine (JSON)          junk detection state
//	k <len><idkey a><idkey b>  -> Candidate (JSON)           pending links, stored both ways
//	g <account id>             -> Account (JSON)             B2B accounts and their members
//	z <idkey>                  -> newest event seq (8 bytes)  erased identifier whose filed events are still being
//	                                                         deleted (its value in clear until then: seconds)
//
// An idkey is canon.Identifier.Key(): type, NUL, value.
//
// Values over Options.ValueThreshold (64 bytes) live in Badger's value log,
// so compactions move keys and pointers only; the engine reclaims dead
// values with CollectGarbage. Two fixed-size Bloom filters, filled from the
// keys at open and kept up by every commit, answer "not stored" from memory
// for message ids (d) and for identifiers and profile ids (i, x): most
// events carry new ones, and lookups of identifiers never seen then skip
// Badger, including its wait for a commit in progress.
//
// Commits are pipelined. Badger runs in managed mode: the store picks each
// commit's timestamp, so the writer opens its next transaction while Badger
// still writes the one before (UpdateAsync). That transaction reads the
// state as of the commit before the one in flight, and the in-flight
// commit's writes through an overlay (kv.go). One commit is in flight at
// a time, so Badger never stores a commit after failing the one before it
// (whose events the later one's positions would skip). A commit is visible to readers once Badger has written it: its
// cache refresh and snapshot are published then, in commit order. A
// commit Badger fails fails every later one (ErrFailed), since they may
// build on it; a restart resumes from the stored state. The store tells
// Badger which old versions compactions may drop: those no reader's
// timestamp can reach.
//
// Readers never open a Badger transaction of their own: a snapshot is
// opened after each commit and published with its cache refresh, and
// lookups, views and exports share it (snapshot.go), so none waits for
// the writer.
package store
