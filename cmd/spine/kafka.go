package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaConn is how Spine's Kafka clients reach the brokers: TLS and SASL.
// It is read from flags once and turned into client options once
// (kafkaConnOpts), which the consumer and the Kafka sink share, so the two
// clients can never disagree on how to connect.
type kafkaConn struct {
	TLS           bool
	TLSCA         string // PEM file of the CAs to trust; empty: the system pool
	TLSCert       string // PEM client certificate, for mutual TLS
	TLSKey        string // PEM key of TLSCert
	TLSServerName string // name to verify the broker's certificate against; empty: the dialed host
	SASLMechanism string // plain, scram-sha-256 or scram-sha-512; empty: no SASL
	SASLUser      string
	SASLPassword  string
}

// LogValue implements slog.LogValuer: the password is never logged.
func (k kafkaConn) LogValue() slog.Value {
	pw := ""
	if k.SASLPassword != "" {
		pw = "REDACTED"
	}
	return slog.GroupValue(
		slog.Bool("tls", k.TLS), slog.String("tls_ca", k.TLSCA), slog.String("tls_cert", k.TLSCert),
		slog.String("tls_server_name", k.TLSServerName), slog.String("sasl_mechanism", k.SASLMechanism),
		slog.String("sasl_user", k.SASLUser), slog.String("sasl_password", pw))
}

// String keeps fmt from printing the password too.
func (k kafkaConn) String() string { return k.LogValue().String() }

// register adds the connection flags to fs.
func (k *kafkaConn) register(fs *flag.FlagSet) {
	fs.BoolVar(&k.TLS, "kafka-tls", false, "connect to the Kafka brokers over TLS")
	fs.StringVar(&k.TLSCA, "kafka-tls-ca", "", "PEM file of the CA certificates that sign the brokers' certificates (default: the system's)")
	fs.StringVar(&k.TLSCert, "kafka-tls-cert", "", "PEM client certificate for mutual TLS (with --kafka-tls-key)")
	fs.StringVar(&k.TLSKey, "kafka-tls-key", "", "PEM private key of --kafka-tls-cert")
	fs.StringVar(&k.TLSServerName, "kafka-tls-server-name", "", "name to verify the brokers' certificates against (default: the broker host)")
	fs.StringVar(&k.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (default: no SASL)")
	fs.StringVar(&k.SASLUser, "kafka-sasl-user", "", "SASL user name")
	fs.StringVar(&k.SASLPassword, "kafka-sasl-password", "", "SASL password; prefer SPINE_KAFKA_SASL_PASSWORD or --config, which ps does not show")
}

// kafkaConnOpts checks k and returns the client options it stands for:
// kgo.DialTLSConfig and kgo.SASL, or nothing for a plaintext, anonymous
// connection. It reports every problem at once; no error quotes the
// password. log (may be nil) gets a warning when a password would travel
// without TLS.
func kafkaConnOpts(k kafkaConn, log *slog.Logger) ([]kgo.Opt, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if !k.TLS {
		for _, f := range []struct{ name, v string }{
			{"--kafka-tls-ca", k.TLSCA}, {"--kafka-tls-cert", k.TLSCert},
			{"--kafka-tls-key", k.TLSKey}, {"--kafka-tls-server-name", k.TLSServerName},
		} {
			if f.v != "" {
				bad("%s is set but --kafka-tls is not", f.name)
			}
		}
	}
	if (k.TLSCert == "") != (k.TLSKey == "") {
		bad("--kafka-tls-cert and --kafka-tls-key go together")
	}
	var tc *tls.Config
	if k.TLS {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.TLSServerName}
		if k.TLSCA != "" {
			pem, err := os.ReadFile(k.TLSCA)
			switch {
			case err != nil:
				bad("--kafka-tls-ca: %v", err)
			default:
				tc.RootCAs = x509.NewCertPool()
				if !tc.RootCAs.AppendCertsFromPEM(pem) {
					bad("--kafka-tls-ca %s: no PEM certificate in it", k.TLSCA)
				}
			}
		}
		if k.TLSCert != "" && k.TLSKey != "" {
			cert, err := tls.LoadX509KeyPair(k.TLSCert, k.TLSKey)
			if err != nil {
				bad("--kafka-tls-cert/--kafka-tls-key: %v", err)
			} else {
				tc.Certificates = []tls.Certificate{cert}
			}
		}
	}

	var mech sasl.Mechanism
	switch m := strings.ToLower(strings.TrimSpace(k.SASLMechanism)); m {
	case "":
		if k.SASLUser != "" || k.SASLPassword != "" {
			bad("--kafka-sasl-user or --kafka-sasl-password is set but --kafka-sasl-mechanism is not")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if k.SASLUser == "" {
			bad("--kafka-sasl-user is required with --kafka-sasl-mechanism %s", m)
		}
		if k.SASLPassword == "" {
			bad("--kafka-sasl-password is required with --kafka-sasl-mechanism %s", m)
		}
		switch m {
		case "plain":
			mech = plain.Auth{User: k.SASLUser, Pass: k.SASLPassword}.AsMechanism()
		case "scram-sha-256":
			mech = scram.Auth{User: k.SASLUser, Pass: k.SASLPassword}.AsSha256Mechanism()
		case "scram-sha-512":
			mech = scram.Auth{User: k.SASLUser, Pass: k.SASLPassword}.AsSha512Mechanism()
		}
	default:
		// The mechanism is not a secret, but a password pasted into the
		// wrong flag would be: do not echo it.
		bad("--kafka-sasl-mechanism must be plain, scram-sha-256 or scram-sha-512")
	}

	if len(problems) > 0 {
		return nil, fmt.Errorf("kafka connection:\n  %s", strings.Join(problems, "\n  "))
	}
	var opts []kgo.Opt
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
		if tc == nil && mech.Name() == "PLAIN" && log != nil {
			log.Warn("kafka: SASL PLAIN without --kafka-tls sends the password in clear text")
		}
	}
	return opts, nil
}
