// Package kafka is the sink that streams the engine's change log to Kafka:
// profile versions to the compacted TopicPrefix+"profiles" topic (key =
// profile id, value = profile JSON, a tombstone when a profile is deleted
// or erased) and identity-log records (merges, splits, conflicts, erasures,
// ...) to TopicPrefix+"identity" as JSON keyed by profile id.
//
// Delivery is at-least-once, which the Sink contract makes safe: Write
// produces a whole batch with franz-go's idempotent producer and returns
// only when every record is acknowledged; a replayed batch rewrites the
// same keys with the same values, so the compacted profile topic converges
// to the same state, and identity records carry the change's seq (in the
// value and in a "seq" header) for readers to deduplicate. Records of one
// profile keep their order: they share a key, hence a partition.
//
// The sink does not create topics: the consumer does at start-up
// (consumer.Config.CreateTopics) or the operator does.
package kafka
