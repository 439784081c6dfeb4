package consumer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/schemas/canon"
)

// Config configures a Consumer. Start from DefaultConfig.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID is sent to the brokers to name this client in their logs and
	// quotas.
	ClientID string
	// TopicPrefix is prepended to every topic name: the channel topics are
	// TopicPrefix+channel ("spine.web", ...).
	TopicPrefix string
	// Group is the consumer group. Kafka's committed offsets for it are for
	// monitoring only; the engine's stored positions are what resumes.
	Group string
	// InstanceID, when set, makes this consumer a static group member
	// (KIP-345): a restarted engine with the same id takes its partitions
	// back at once, instead of waiting for the session of the process that
	// crashed to time out. One engine writes a tenant's state, so one
	// stable id per state directory is right.
	InstanceID string
	// DLQTopic receives rejected records. Empty means TopicPrefix+"dlq".
	DLQTopic string
	// MaxPollRecords bounds one batch: the records read by one poll, decoded
	// and applied together.
	MaxPollRecords int
	// ApplyRecords bounds the records decoded and applied together: a poll
	// is cut into chunks of this size, and the next chunk is decoded while
	// the engine applies the previous one.
	ApplyRecords int
	// Background, when set, runs first in each goroutine that decodes a
	// chunk. cmd/spine lowers the thread's CPU priority there, so that API
	// requests win the CPU over decoding. It may lock the goroutine to its
	// thread: the goroutine ends with its chunk, and Go then ends the
	// thread.
	Background func()
	// MaxMessageBytes is the largest record value decoded; a larger one is
	// rejected as oversize without being decoded. It also sizes the DLQ
	// producer's batches.
	MaxMessageBytes int
	// CreateTopics creates missing topics at start: the six channel topics,
	// the DLQ, TopicPrefix+"profiles" (compacted) and TopicPrefix+"identity".
	CreateTopics bool
	// Partitions is the partition count of created topics; -1 takes the
	// broker's default.
	Partitions int
	// ReplicationFactor of created topics; -1 takes the broker's default.
	ReplicationFactor int
	// Conn are the client options for reaching the brokers beyond Brokers
	// and ClientID: TLS (kgo.DialTLSConfig), SASL (kgo.SASL), a dialer.
	// They are built once, at the edge (cmd/spine), and shared with the
	// Kafka sink, so both clients connect the same way. They are applied
	// before the consumer's own options, which therefore win where they
	// overlap: Conn cannot change how the consumer reads or commits.
	Conn []kgo.Opt
	// FetchMaxWait is the longest a broker may hold a fetch that finds no
	// data (kgo.FetchMaxWait; Kafka clients default to 5s). It is the
	// worst-case produce-to-apply latency whenever a parked fetch is not
	// woken by new data: kfake's first fetch of a session was reported to
	// wait the full FetchMaxWait, so with 5s a test or demo that produces
	// right after start-up saw its first records applied 5s late. A broker
	// that wakes parked fetches adds nothing either way (measured with the
	// pinned kfake: about 25ms produce-to-apply at both 250ms and 5s).
	// 250ms keeps the worst case short at the price of four empty fetches
	// a second per broker when idle, which no broker notices.
	FetchMaxWait time.Duration
	// BackoffMin and BackoffMax bound the capped exponential backoff used to
	// retry DLQ writes, Apply and topic creation.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// StopTimeout bounds how long the in-flight batch may still take once
	// Run's context is cancelled (soft stop).
	StopTimeout time.Duration
	// LagInterval is how often the lag of every assigned partition is
	// refreshed from the partitions' end offsets (one ListOffsets request
	// per broker).
	LagInterval time.Duration
}

// DefaultConfig returns the defaults: a broker on 127.0.0.1:9092, topics
// "spine.*", group "spine-engine", batches of up to 5000 records.
func DefaultConfig() Config {
	return Config{
		Brokers:           []string{"127.0.0.1:9092"},
		ClientID:          "spine",
		TopicPrefix:       "spine.",
		Group:             "spine-engine",
		MaxPollRecords:    5000,
		ApplyRecords:      1000,
		MaxMessageBytes:   1 << 20,
		Partitions:        -1,
		ReplicationFactor: -1,
		FetchMaxWait:      250 * time.Millisecond,
		BackoffMin:        100 * time.Millisecond,
		BackoffMax:        10 * time.Second,
		StopTimeout:       10 * time.Second,
		LagInterval:       10 * time.Second,
	}
}

// maxMessageBytes caps MaxMessageBytes: Kafka's own protocol limits sit
// below it, and batches of MaxPollRecords such records must fit in memory.
const maxMessageBytes = 64 << 20

// FetchMaxWait bounds: kgo refuses less than 10ms, and a wait longer than
// a few seconds only adds latency.
const (
	minFetchMaxWait = 10 * time.Millisecond
	maxFetchMaxWait = 30 * time.Second
)

// Validate reports every problem with c at once, one per line.
func (c *Config) Validate() error {
	var b strings.Builder
	if len(c.Brokers) == 0 {
		b.WriteString("Brokers must name at least one broker\n")
	}
	for i, br := range c.Brokers {
		if strings.TrimSpace(br) == "" {
			fmt.Fprintf(&b, "Brokers[%d] is empty\n", i)
		}
	}
	for _, ch := range canon.Channels {
		if err := checkTopic(c.TopicPrefix + string(ch)); err != nil {
			fmt.Fprintf(&b, "TopicPrefix (%q) gives an invalid topic name: %v\n", c.TopicPrefix, err)
			break
		}
	}
	if c.DLQTopic != "" {
		if err := checkTopic(c.DLQTopic); err != nil {
			fmt.Fprintf(&b, "DLQTopic (%q): %v\n", c.DLQTopic, err)
		}
	}
	if c.Group == "" {
		b.WriteString("Group must be set\n")
	}
	if c.MaxPollRecords <= 0 {
		fmt.Fprintf(&b, "MaxPollRecords (%d) must be > 0\n", c.MaxPollRecords)
	}
	if c.ApplyRecords <= 0 {
		fmt.Fprintf(&b, "ApplyRecords (%d) must be > 0\n", c.ApplyRecords)
	}
	if c.MaxMessageBytes <= 0 || c.MaxMessageBytes > maxMessageBytes {
		fmt.Fprintf(&b, "MaxMessageBytes (%d) must be in 1..%d\n", c.MaxMessageBytes, maxMessageBytes)
	}
	if c.CreateTopics {
		if c.Partitions == 0 || c.Partitions < -1 {
			fmt.Fprintf(&b, "Partitions (%d) must be > 0, or -1 for the broker's default\n", c.Partitions)
		}
		if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 || c.ReplicationFactor > 1<<15-1 {
			fmt.Fprintf(&b, "ReplicationFactor (%d) must be > 0, or -1 for the broker's default\n", c.ReplicationFactor)
		}
	}
	for i, o := range c.Conn {
		if o == nil {
			fmt.Fprintf(&b, "Conn[%d] is nil\n", i)
		}
	}
	if c.FetchMaxWait < minFetchMaxWait || c.FetchMaxWait > maxFetchMaxWait {
		fmt.Fprintf(&b, "FetchMaxWait (%v) must be in %v..%v\n", c.FetchMaxWait, minFetchMaxWait, maxFetchMaxWait)
	}
	if c.BackoffMin <= 0 {
		fmt.Fprintf(&b, "BackoffMin (%v) must be > 0\n", c.BackoffMin)
	}
	if c.BackoffMax < c.BackoffMin {
		fmt.Fprintf(&b, "BackoffMax (%v) must be >= BackoffMin (%v)\n", c.BackoffMax, c.BackoffMin)
	}
	if c.StopTimeout <= 0 {
		fmt.Fprintf(&b, "StopTimeout (%v) must be > 0\n", c.StopTimeout)
	}
	if c.LagInterval < minFetchMaxWait {
		fmt.Fprintf(&b, "LagInterval (%v) must be at least %v\n", c.LagInterval, minFetchMaxWait)
	}
	if b.Len() == 0 {
		return nil
	}
	return fmt.Errorf("consumer: invalid config:\n%s", strings.TrimSuffix(b.String(), "\n"))
}

// checkTopic applies Kafka's topic name rules.
func checkTopic(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > 249:
		return errors.New("longer than 249 characters")
	case name == "." || name == "..":
		return errors.New(`"." and ".." are reserved`)
	}
	for _, r := range name {
		ok := r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok {
			return errors.New("only ASCII letters, digits, '.', '_' and '-' are allowed")
		}
	}
	return nil
}

func (c *Config) topic(ch canon.Channel) string { return c.TopicPrefix + string(ch) }

func (c *Config) dlqTopic() string {
	if c.DLQTopic != "" {
		return c.DLQTopic
	}
	return c.TopicPrefix + "dlq"
}

// connOpts are the client options for reaching the brokers: Conn first,
// then the seed brokers and client id.
func (c *Config) connOpts() []kgo.Opt {
	opts := append([]kgo.Opt(nil), c.Conn...)
	opts = append(opts, kgo.SeedBrokers(c.Brokers...))
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	return opts
}
