package gen

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Config says what to generate. The zero values of Channels, Start, Window,
// Journey and TopicPrefix mean their defaults; New fills them in.
type Config struct {
	// Persons is how many people to simulate.
	Persons int
	// Seed selects the stream: the same Config gives byte-identical output.
	Seed int64
	// Channels to emit; nil means all six. Messages of other channels are not
	// generated and do not count in the truth. Dropping a channel may leave a
	// person's identifiers unlinkable (CIAM is what joins most of them).
	Channels []canon.Channel
	// Hard adds the cases that break naive identity resolution: formatting
	// variants, junk values, shared family tablets, duplicate deliveries,
	// late events and malformed messages.
	Hard bool
	// Start is the send time of the first person's journey. It is fixed by
	// default rather than time.Now so that output is reproducible.
	Start time.Time
	// Window bounds how many people are active at once, and so the memory the
	// generator holds (roughly Window × 10 KB). People start Journey/Window
	// apart, so the stream covers about Persons/Window × Journey of time.
	Window int
	// Journey is the longest time one person's journey spans.
	Journey time.Duration
	// TopicPrefix is prepended to the channel name to make the topic.
	TopicPrefix string
}

// MaxPersons bounds Config.Persons: the phone-number space gives every
// person a distinct valid number up to this size.
const MaxPersons = 100_000_000

// maxSpan bounds the time the whole stream covers.
const maxSpan = 100 * 365 * 24 * time.Hour

// DefaultConfig returns a small, complete configuration: 1,000 people on all
// channels, without the hard cases.
func DefaultConfig() Config {
	return Config{
		Persons:     1000,
		Seed:        1,
		Channels:    append([]canon.Channel(nil), canon.Channels...),
		Start:       time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC),
		Window:      2048,
		Journey:     7 * 24 * time.Hour,
		TopicPrefix: "spine.",
	}
}

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if len(c.Channels) == 0 {
		c.Channels = d.Channels
	}
	if c.Start.IsZero() {
		c.Start = d.Start
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.Journey == 0 {
		c.Journey = d.Journey
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = d.TopicPrefix
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var b strings.Builder
	if c.Persons < 0 || c.Persons > MaxPersons {
		fmt.Fprintf(&b, "persons (%d) must be between 0 and %d\n", c.Persons, MaxPersons)
	}
	seen := map[canon.Channel]bool{}
	for _, ch := range c.Channels {
		if !ch.Valid() {
			fmt.Fprintf(&b, "channel %q is unknown\n", ch)
		} else if seen[ch] {
			fmt.Fprintf(&b, "channel %q is listed twice\n", ch)
		}
		seen[ch] = true
	}
	if c.Window < 1 {
		fmt.Fprintf(&b, "window (%d) must be at least 1\n", c.Window)
	}
	if c.Window > 1<<20 {
		fmt.Fprintf(&b, "window (%d) must be at most %d\n", c.Window, 1<<20)
	}
	if c.Journey < time.Hour {
		fmt.Fprintf(&b, "journey (%s) must be at least 1h\n", c.Journey)
	}
	// The stream spans Persons/Window journeys; keep it inside time.Duration.
	if c.Window >= 1 && float64(c.Persons)/float64(c.Window)*float64(c.Journey) > float64(maxSpan) {
		fmt.Fprintf(&b, "persons/window × journey must be at most %s: raise window or shorten journey\n", maxSpan)
	}
	if c.Start.IsZero() {
		b.WriteString("start must be set\n")
	}
	if c.TopicPrefix == "" {
		b.WriteString("topic prefix must be set\n")
	}
	if b.Len() == 0 {
		return nil
	}
	return errors.New("gen: invalid config:\n" + b.String())
}
