package kafka

import (
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures the Kafka sink. Start from DefaultConfig.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID names this client to the brokers.
	ClientID string
	// TopicPrefix is prepended to "profiles" and "identity".
	TopicPrefix string
	// MaxMessageBytes bounds one produced record (a profile's JSON). A
	// larger one fails the Write with a non-retryable error: it would fail
	// the same way on every retry.
	MaxMessageBytes int
	// DeliveryTimeout bounds how long a Write waits for acknowledgements
	// before it fails with a retryable error.
	DeliveryTimeout time.Duration
	// Conn are the client options for reaching the brokers beyond Brokers
	// and ClientID: TLS (kgo.DialTLSConfig), SASL (kgo.SASL), a dialer.
	// They are built once, at the edge (cmd/spine), and shared with the
	// consumer. They are applied before the sink's own options, which win
	// where they overlap.
	Conn []kgo.Opt
	// PseudonymKey keys the pseudonyms that replace identifier values in
	// the identity log (canon.Identifier.Pseudonym); at least 16 bytes.
	// It must stay the same across runs for pseudonyms to correlate: the
	// engine keeps one in its state (engine.Engine.PseudonymKey).
	PseudonymKey []byte
}

// DefaultConfig returns the defaults: a broker on 127.0.0.1:9092, topics
// spine.profiles and spine.identity.
func DefaultConfig() Config {
	return Config{
		Brokers:         []string{"127.0.0.1:9092"},
		ClientID:        "spine-sink",
		TopicPrefix:     "spine.",
		MaxMessageBytes: 1 << 20,
		DeliveryTimeout: 30 * time.Second,
	}
}

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
	if strings.Trim(c.TopicPrefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" ||
		len(c.TopicPrefix) > 240 {
		fmt.Fprintf(&b, "TopicPrefix (%q) must be at most 240 ASCII letters, digits, '.', '_' or '-'\n", c.TopicPrefix)
	}
	if c.MaxMessageBytes <= 0 || c.MaxMessageBytes > 1<<30 {
		fmt.Fprintf(&b, "MaxMessageBytes (%d) must be in 1..%d\n", c.MaxMessageBytes, 1<<30)
	}
	if len(c.PseudonymKey) < 16 {
		fmt.Fprintf(&b, "PseudonymKey has %d bytes; it needs at least 16\n", len(c.PseudonymKey))
	}
	if c.DeliveryTimeout < time.Second {
		fmt.Fprintf(&b, "DeliveryTimeout (%v) must be >= 1s\n", c.DeliveryTimeout)
	}
	for i, o := range c.Conn {
		if o == nil {
			fmt.Fprintf(&b, "Conn[%d] is nil\n", i)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return fmt.Errorf("kafka: invalid config:\n%s", strings.TrimSuffix(b.String(), "\n"))
}

func (c *Config) profilesTopic() string { return c.TopicPrefix + "profiles" }
func (c *Config) identityTopic() string { return c.TopicPrefix + "identity" }

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
