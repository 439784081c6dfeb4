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
//	e <len><idkey a><idkey b>  -> canon.Evidence (JSON)      links, stored both ways
//	v <len><idkey><seq>        -> canon.Event (JSON)         events by anchor identifier
//	d <channel>\x00<message id>-> empty, with TTL            dedup window
//	o <topic>\x00<partition>   -> next offset (8 bytes)      consume positions
//	l <seq>                    -> canon.Change (JSON)        change log
//	c <sink>                   -> acked seq (8 bytes)        sink cursors
//	m <name>                   -> uint64                     counters
//	h <keyed hash>             -> erasure time               erased identifiers, hashed only
//	q <idkey>                  -> Quarantine (JSON)          junk detection state
//	k <len><idkey a><idkey b>  -> Candidate (JSON)           pending links, stored both ways
//	g <account id>             -> Account (JSON)             B2B accounts and their members
//
// An idkey is canon.Identifier.Key(): type, NUL, value.
package store
