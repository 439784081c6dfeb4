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
//	e <len><idkey a><idkey b>  -> canon.Evidence (binary)    links, stored both ways (JSON in older stores)
//	v <len><idkey><seq>        -> canon.Event (JSON)         events by anchor identifier
//	d <channel>\x00<message id>-> empty, with TTL            dedup window
//	o <topic>\x00<partition>   -> next offset (8 bytes)      consume positions
//	l <first seq><last seq>    -> []canon.Change (JSON)      change log: one page per transaction
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
// Readers never open a Badger transaction of their own: the writer opens
// one after each commit and publishes it with its cache refresh, and
// lookups, views and exports share it (snapshot.go), so none waits for
// the writer's next commit to reach the LSM tree.
package store
