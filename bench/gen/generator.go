package gen

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Message is one Kafka record of the synthetic stream.
type Message struct {
	Channel canon.Channel
	Topic   string // TopicPrefix + channel, e.g. "spine.web"
	// Key is stable per person (per device for orphans), so that one
	// person's events of a channel stay in order in one partition.
	Key []byte
	// Value is the raw JSON as the channel sends it (DESIGN section 5), or
	// the corrupt bytes of a malformed message.
	Value []byte
	// Person is the ground-truth person index, NoPerson or DLQ.
	Person int
	// Time is the event time written in the message. Late events carry a
	// time earlier than messages sent before them.
	Time time.Time
	// Duplicate marks a redelivery: the same bytes as an earlier message.
	Duplicate bool
}

// Generator yields the stream. It is not safe for concurrent use.
type Generator struct {
	spec   *spec
	next   int        // next person to admit
	active personHeap // people with messages left, by next send time
	totals Totals     // what Next has yielded so far
	peak   int        // most people active at once
	stats  func(int)  // test hook: called with the active count on admission
}

// New validates cfg (after filling in defaults for zero fields) and returns
// a generator positioned at the start of the stream.
func New(cfg Config) (*Generator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Channels = append([]canon.Channel(nil), cfg.Channels...)
	cfg.Start = cfg.Start.UTC().Truncate(time.Millisecond)
	return &Generator{spec: newSpec(cfg)}, nil
}

// Config returns the configuration in use, defaults filled in.
func (g *Generator) Config() Config { return g.spec.cfg }

// Next returns the next message in send-time order, and false when the
// stream is exhausted. Each person's journey is planned when the stream
// reaches its start time and dropped once its last message is out.
func (g *Generator) Next() (Message, bool) {
	for g.next < g.spec.cfg.Persons &&
		(len(g.active) == 0 || !g.spec.personStart(g.next).After(g.active[0].msgs[g.active[0].pos].send)) {
		pl := g.spec.finish(g.spec.planPerson(g.next), true)
		if len(pl.msgs) > 0 {
			heap.Push(&g.active, &cursor{person: g.next, plan: pl})
			g.peak = max(g.peak, len(g.active))
		}
		g.next++
	}
	if len(g.active) == 0 {
		return Message{}, false
	}
	c := g.active[0]
	o := c.msgs[c.pos]
	m := o.Message
	c.msgs[c.pos] = outMsg{} // let the bytes go as soon as they are out
	c.pos++
	if c.pos == len(c.msgs) {
		heap.Pop(&g.active)
	} else {
		heap.Fix(&g.active, 0)
	}
	g.count(o)
	return m, true
}

func (g *Generator) count(m outMsg) {
	g.totals.Messages++
	switch {
	case m.Duplicate:
		g.totals.Duplicates++
	case m.malformed:
		g.totals.Malformed++
	case m.Person == DLQ:
		g.totals.JunkOnly++
	}
	g.totals.Accepted = g.totals.Messages - g.totals.Duplicates - g.totals.Malformed - g.totals.JunkOnly
}

// Stats returns what Next has yielded so far. Once the stream is exhausted
// it equals Truth().Totals.
func (g *Generator) Stats() Totals {
	t := g.totals
	t.Persons = g.next
	return t
}

// Peak returns the most persons that were active at once so far: the bound
// on the generator's memory, at most Config.Window+1.
func (g *Generator) Peak() int { return g.peak }

func (g *Generator) String() string {
	c := g.spec.cfg
	return fmt.Sprintf("gen.Generator{persons: %d, seed: %d, hard: %t, channels: %v}", c.Persons, c.Seed, c.Hard, c.Channels)
}

// cursor is one active person's remaining messages.
type cursor struct {
	person int
	plan
	pos int
}

// personHeap orders active persons by their next message's send time, then
// by person index, so that the interleaving is deterministic.
type personHeap []*cursor

func (h personHeap) Len() int { return len(h) }
func (h personHeap) Less(i, j int) bool {
	a, b := h[i].msgs[h[i].pos].send, h[j].msgs[h[j].pos].send
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].person < h[j].person
}
func (h personHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *personHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *personHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}
