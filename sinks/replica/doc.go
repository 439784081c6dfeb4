// Package replica owns a read-only copy of the unified profiles, built from
// the compacted profile stream (TopicPrefix+"profiles": key = profile id,
// value = profile JSON, a tombstone when a profile is absorbed or erased),
// for lookups served by a process of their own.
//
// Why a process of its own: in the engine's process a lookup shares the Go
// scheduler, the garbage collector's pauses and the CPUs with ingestion,
// and on a small machine that puts the lookup p99 in the tens of
// milliseconds while the engine is saturated (bench/RESULTS.md, "The lookup
// tail"). A replica holds only what lookups need, in memory, and the
// kernel can be told to run it first (cmd/spine: spine replica
// --realtime-priority).
//
// What it holds: each live profile's JSON as the engine encoded it, the
// identifiers each profile lists (identifier → profile) and the ids each
// absorbed (absorbed id → survivor). Records arrive per partition in
// change-log order; across partitions they do not, so an identifier or an
// absorbed id goes to the profile whose record naming it has the highest
// change seq, and a record drops only the claims it still holds.
//
// What it answers: the lookup API's reads (by identifier, by profile id,
// an absorbed id answering with its survivor). It is eventually consistent
// with the engine: a change shows once the Kafka sink has published it and
// the replica has read it (bench: "replica-visible"). Commands (erase,
// consent, links) and the engine's other views stay with the engine's API.
package replica
