// Package consumer is Spine's Kafka ingest loop: it consumes the six channel
// topics as one consumer group with franz-go, decodes every record with its
// channel's pure decoder, writes rejected records to the dead-letter topic
// with their original bytes and the reason, and hands the accepted events
// with their consume positions to an Applier (the engine) in batches.
//
// # Positions
//
// The positions of record live in the engine, which stores them in the same
// Badger transaction as the state they caused. When the group assigns
// partitions, the consumer asks Applier.Positions and seeks there
// (kgo.AdjustFetchOffsetsFn); partitions with no stored position start at
// the earliest offset. Offsets committed to Kafka are written after each
// applied batch for monitoring only (lag dashboards, kafka-consumer-groups);
// they are never read back, so a Kafka commit that is ahead of or behind the
// engine cannot lose or repeat an event.
//
// # Loop
//
// One goroutine (Run) does, per poll: PollRecords(MaxPollRecords) → log and
// count fetch errors → cut the records into chunks of ApplyRecords (each
// partition's records stay in order) → for each chunk: ProduceSync its DLQ
// records → Apply its events with the positions it reached → after the
// last chunk, AllowRebalance. A second goroutine, owned by the poll's
// processing, decodes one chunk ahead, so decoding and the engine's apply
// run on two cores. Rebalances are blocked while a poll is in flight
// (kgo.BlockRebalanceOnPoll), so a partition is never revoked and
// re-assigned between reading its records and storing its position.
// Spine runs one engine, hence one member, per group; if a second member
// joins while Apply is blocked for longer than the group's rebalance
// timeout, this member loses its partitions and rejoins, which costs
// nothing but time: it seeks to the engine's positions again.
// Memory is bounded by MaxPollRecords and the client's fetch buffers: the
// next poll starts only after the last chunk was applied, so a slow engine
// slows consumption instead of growing a queue.
//
// # Dead letters
//
// A rejected record goes to the DLQ topic with its original key and value
// unchanged and headers naming the reason, channel, topic, partition,
// offset, field and rule (never a value from the message). The DLQ write
// comes before Apply and is retried with capped backoff until it succeeds:
// if it cannot be written, the batch is not applied, its positions do not
// move, and after a restart the same records are read, decoded and
// dead-lettered again. Nothing is dropped; the price is that a record may
// reach the DLQ more than once (at-least-once), which the topic, partition
// and offset headers let a reader deduplicate. A DLQ record the broker
// refuses as too large is written once more without its value, with the
// header value_omitted=too_large; the original stays readable at the
// topic, partition and offset the headers name.
//
// # Stopping
//
// Cancelling Run's context is a soft stop: the in-flight chunk's DLQ write
// and Apply go on for up to Config.StopTimeout, then Run returns; the
// poll's remaining chunks are read again after a restart. Close
// leaves the group and closes the client.
package consumer
