package kafka

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL holds SASL credentials. The zero value means no SASL.
type SASL struct {
	// Mechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	User      string
	Password  string
}

// LogValue implements slog.LogValuer: the password is never logged.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", s.Mechanism), slog.String("user", s.User),
		slog.String("password", "REDACTED"))
}

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
	// TLS enables TLS with this configuration when not nil.
	TLS *tls.Config
	// SASL authenticates the client when SASL.Mechanism is set.
	SASL SASL
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
	if c.DeliveryTimeout < time.Second {
		fmt.Fprintf(&b, "DeliveryTimeout (%v) must be >= 1s\n", c.DeliveryTimeout)
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.User != "" || c.SASL.Password != "" {
			b.WriteString("SASL.User and SASL.Password are set but SASL.Mechanism is empty\n")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.User == "" {
			fmt.Fprintf(&b, "SASL.User must be set for %s\n", c.SASL.Mechanism)
		}
	default:
		fmt.Fprintf(&b, "SASL.Mechanism (%q) must be one of %s, %s, %s\n", c.SASL.Mechanism,
			SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if b.Len() == 0 {
		return nil
	}
	return fmt.Errorf("kafka: invalid config:\n%s", strings.TrimSuffix(b.String(), "\n"))
}

func (c *Config) profilesTopic() string { return c.TopicPrefix + "profiles" }
func (c *Config) identityTopic() string { return c.TopicPrefix + "identity" }

// connOpts are the client options for reaching the brokers.
func (c *Config) connOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	switch c.SASL.Mechanism {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	return opts
}
