package consumer

import (
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/schemas/canon"
)

// DLQ header keys. Values are short, bounded texts; none carries a value
// from the rejected message.
const (
	HeaderReason       = "reason"        // a msg.Reason code
	HeaderChannel      = "channel"       // the channel, or "unknown"
	HeaderTopic        = "topic"         // the source topic
	HeaderPartition    = "partition"     // the source partition, decimal
	HeaderOffset       = "offset"        // the source offset, decimal
	HeaderField        = "field"         // the field at fault, may be empty
	HeaderMessage      = "message"       // the rule broken, in words
	HeaderValueOmitted = "value_omitted" // "too_large" when the broker refused the value
	// HeaderOriginalPrefix prefixes the source record's own headers.
	HeaderOriginalPrefix = "original."
)

// numDLQHeaders is how many headers dlqRecord puts before the source
// record's own.
const numDLQHeaders = 7

// decoded is one batch after decoding: the events for Apply, the DLQ
// records, and the next offset of every partition it read.
type decoded struct {
	events    []canon.Event
	evChan    []canon.Channel // channel of events[i], for metrics after Apply
	dlq       []*kgo.Record
	dlqLabels [][2]string // channel, reason of dlq[i]
	positions map[canon.Partition]int64
	// marks holds each partition's high watermark as its fetch saw it, for
	// the lag once the chunk is applied.
	marks map[canon.Partition]int64
}

// partRecords are consecutive records of one partition.
type partRecords struct {
	topic     string
	partition int32
	hw        int64 // the partition's high watermark at fetch time
	recs      []*kgo.Record
}

// split cuts a poll into chunks of at most size records, keeping each
// partition's records in order. A chunk's positions cover only what it
// holds, so applying the chunks in order stores correct positions after
// each one.
func split(fs kgo.Fetches, size int) [][]partRecords {
	var chunks [][]partRecords
	var cur []partRecords
	n := 0
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		recs := p.Records
		for len(recs) > 0 {
			take := min(size-n, len(recs))
			cur = append(cur, partRecords{topic: p.Topic, partition: p.Partition, hw: p.HighWatermark, recs: recs[:take]})
			recs, n = recs[take:], n+take
			if n == size {
				chunks, cur, n = append(chunks, cur), nil, 0
			}
		}
	})
	if n > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// decodeChunk decodes every record of a chunk. It never fails: whatever
// cannot become an event becomes a DLQ record.
func (c *Consumer) decodeChunk(chunk []partRecords) *decoded {
	d := &decoded{positions: make(map[canon.Partition]int64), marks: make(map[canon.Partition]int64)}
	for _, p := range chunk {
		part := canon.Partition{Topic: p.topic, Partition: p.partition}
		d.positions[part] = p.recs[len(p.recs)-1].Offset + 1
		if p.hw > 0 {
			d.marks[part] = p.hw
		}
		ch, known := c.channels[p.topic]
		for _, r := range p.recs {
			if !known {
				d.reject(r, unknownChannel, &msg.Reject{Reason: msg.ReasonUnknownTopic,
					Message: "topic is not a channel topic"})
				continue
			}
			ev, rej := c.decodeOne(ch, r.Value)
			if rej != nil {
				d.reject(r, string(ch), rej)
				continue
			}
			d.events = append(d.events, ev)
			d.evChan = append(d.evChan, ch)
		}
	}
	return d
}

// decodeOne runs ch's decoder on raw. A decoder panic is recovered and
// becomes an invalid_value reject: one poisonous message must not take the
// process down and with it every channel.
func (c *Consumer) decodeOne(ch canon.Channel, raw []byte) (ev canon.Event, rej *msg.Reject) {
	if len(raw) > c.cfg.MaxMessageBytes {
		return ev, msg.Rejectf(ch, msg.ReasonOversize, "", "message is larger than %d bytes", c.cfg.MaxMessageBytes)
	}
	dec := c.decoders[ch]
	start := time.Now()
	defer func() {
		c.decodeSecs[ch].Observe(time.Since(start).Seconds())
		if p := recover(); p != nil {
			c.m.panics.WithLabelValues(string(ch)).Inc()
			// The panic value may quote the message; log only that it happened.
			c.log.Error("decoder panicked; record dead-lettered", "channel", ch)
			ev, rej = canon.Event{}, msg.Rejectf(ch, msg.ReasonInvalidValue, "", "decoder failed on this message")
		}
	}()
	ev, err := dec(raw)
	if err != nil {
		return canon.Event{}, toReject(ch, err)
	}
	if ev.Channel != ch {
		return canon.Event{}, msg.Rejectf(ch, msg.ReasonInvalidValue, "channel", "decoded channel does not match the topic")
	}
	// Decoders must never return an invalid event; check anyway, so that
	// a decoder bug costs a DLQ record rather than the engine's invariants.
	if err := ev.Validate(); err != nil {
		return canon.Event{}, toReject(ch, err)
	}
	return ev, nil
}

// toReject classifies a decoder error. Unlike msg.AsReject it never copies
// the text of an unclassified error, which (encoding/json's, for one) can
// quote bytes of the message.
func toReject(ch canon.Channel, err error) *msg.Reject {
	var r *msg.Reject
	var fe *canon.FieldError
	switch {
	case errors.As(err, &r):
		out := *r
		out.Channel = ch
		return &out
	case errors.As(err, &fe):
		return msg.AsReject(ch, fe)
	}
	return msg.Rejectf(ch, msg.ReasonInvalidValue, "", "decoder returned an unclassified error")
}

func (d *decoded) reject(r *kgo.Record, channel string, rej *msg.Reject) {
	d.dlq = append(d.dlq, dlqRecord(r, channel, rej))
	d.dlqLabels = append(d.dlqLabels, [2]string{channel, string(rej.Reason)})
}

// dlqRecord is r as a dead letter: the original key and value, untouched,
// and headers saying where it came from and why it was refused. The topic
// is set when the batch is produced.
func dlqRecord(r *kgo.Record, channel string, rej *msg.Reject) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, numDLQHeaders+len(r.Headers))
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(rej.Reason)},
		kgo.RecordHeader{Key: HeaderChannel, Value: []byte(channel)},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		kgo.RecordHeader{Key: HeaderOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		kgo.RecordHeader{Key: HeaderField, Value: []byte(rej.Field)},
		kgo.RecordHeader{Key: HeaderMessage, Value: []byte(rej.Message)},
	)
	for _, h := range r.Headers {
		hs = append(hs, kgo.RecordHeader{Key: HeaderOriginalPrefix + h.Key, Value: h.Value})
	}
	return &kgo.Record{Key: r.Key, Value: r.Value, Headers: hs}
}
