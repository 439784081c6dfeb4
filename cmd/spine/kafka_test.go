package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/ingest/kafkatest"
)

const testPassword = "correct-horse-battery"

// ping connects to addr with opts and makes one request: the broker only
// answers once TLS and SASL have succeeded.
func ping(t *testing.T, addr string, opts []kgo.Opt) error {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestKafkaConnOptsSASLMechanisms(t *testing.T) {
	for _, tc := range []struct{ flag, broker string }{
		{"plain", "PLAIN"},
		{"scram-sha-256", "SCRAM-SHA-256"},
		{"scram-sha-512", "SCRAM-SHA-512"},
		{"SCRAM-SHA-512", "SCRAM-SHA-512"}, // the broker's spelling works too
	} {
		t.Run(tc.flag, func(t *testing.T) {
			addr, _ := kafkatest.ClusterWith(t, kfake.EnableSASL(), kfake.Superuser(tc.broker, "spine", testPassword))
			opts, err := kafkaConnOpts(kafkaConn{SASLMechanism: tc.flag, SASLUser: "spine", SASLPassword: testPassword}, nil)
			if err != nil {
				t.Fatalf("kafkaConnOpts: %v", err)
			}
			if len(opts) != 1 {
				t.Errorf("kafkaConnOpts gave %d options, want 1 (SASL)", len(opts))
			}
			if err := ping(t, addr, opts); err != nil {
				t.Errorf("ping with the right password: %v", err)
			}
			wrong, err := kafkaConnOpts(kafkaConn{SASLMechanism: tc.flag, SASLUser: "spine", SASLPassword: "wrong"}, nil)
			if err != nil {
				t.Fatalf("kafkaConnOpts: %v", err)
			}
			if err := ping(t, addr, wrong); err == nil {
				t.Error("ping with a wrong password succeeded")
			}
			if err := ping(t, addr, nil); err == nil {
				t.Error("ping without SASL succeeded against a SASL broker")
			}
		})
	}
}

func TestKafkaConnOptsPlainWithoutTLSWarns(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := kafkaConnOpts(kafkaConn{SASLMechanism: "plain", SASLUser: "u", SASLPassword: testPassword}, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "clear text") {
		t.Errorf("no warning about PLAIN without TLS; log: %s", logs.String())
	}
	if strings.Contains(logs.String(), testPassword) {
		t.Errorf("the log holds the password: %s", logs.String())
	}
}

func TestKafkaConnOptsTLS(t *testing.T) {
	pki := newTestPKI(t)
	serverCfg := &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientCAs:    pki.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	// The broker's certificate names broker.spine.test, not 127.0.0.1: the
	// client must be told the name to verify.
	addr, _ := kafkatest.ClusterWith(t, kfake.TLS(serverCfg), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "spine", testPassword))
	full := kafkaConn{
		TLS: true, TLSCA: pki.caFile, TLSCert: pki.certFile, TLSKey: pki.keyFile,
		TLSServerName: "broker.spine.test",
		SASLMechanism: "scram-sha-256", SASLUser: "spine", SASLPassword: testPassword,
	}
	for _, tc := range []struct {
		name   string
		mod    func(*kafkaConn)
		wantOK bool
	}{
		{"mutual TLS and SCRAM", func(*kafkaConn) {}, true},
		{"no client certificate", func(k *kafkaConn) { k.TLSCert, k.TLSKey = "", "" }, false},
		{"unknown CA (system pool)", func(k *kafkaConn) { k.TLSCA = "" }, false},
		{"wrong server name", func(k *kafkaConn) { k.TLSServerName = "other.spine.test" }, false},
		{"no TLS", func(k *kafkaConn) {
			*k = kafkaConn{SASLMechanism: k.SASLMechanism, SASLUser: k.SASLUser, SASLPassword: k.SASLPassword}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := full
			tc.mod(&k)
			opts, err := kafkaConnOpts(k, nil)
			if err != nil {
				t.Fatalf("kafkaConnOpts: %v", err)
			}
			err = ping(t, addr, opts)
			if tc.wantOK && err != nil {
				t.Errorf("ping: %v", err)
			}
			if !tc.wantOK && err == nil {
				t.Error("ping succeeded, want a failed connection")
			}
		})
	}
}

func TestKafkaConnOptsBadCombinations(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		k    kafkaConn
		want []string // every line the error must hold
	}{
		{"nothing set", kafkaConn{}, nil},
		{"TLS with the system pool", kafkaConn{TLS: true}, nil},
		{"TLS files without --kafka-tls",
			kafkaConn{TLSCA: pki.caFile, TLSCert: pki.certFile, TLSKey: pki.keyFile, TLSServerName: "b"},
			[]string{"--kafka-tls-ca is set but --kafka-tls is not", "--kafka-tls-cert is set", "--kafka-tls-key is set",
				"--kafka-tls-server-name is set"}},
		{"cert without key", kafkaConn{TLS: true, TLSCert: pki.certFile}, []string{"go together"}},
		{"key without cert", kafkaConn{TLS: true, TLSKey: pki.keyFile}, []string{"go together"}},
		{"missing CA file", kafkaConn{TLS: true, TLSCA: filepath.Join(t.TempDir(), "nope.pem")}, []string{"--kafka-tls-ca:"}},
		{"CA file without PEM", kafkaConn{TLS: true, TLSCA: notPEM}, []string{"no PEM certificate"}},
		{"key that is not the cert's", kafkaConn{TLS: true, TLSCert: pki.certFile, TLSKey: pki.otherKeyFile},
			[]string{"--kafka-tls-cert/--kafka-tls-key:"}},
		{"user without mechanism", kafkaConn{SASLUser: "u"}, []string{"--kafka-sasl-mechanism is not"}},
		{"password without mechanism", kafkaConn{SASLPassword: testPassword}, []string{"--kafka-sasl-mechanism is not"}},
		{"unknown mechanism", kafkaConn{SASLMechanism: "gssapi", SASLUser: "u", SASLPassword: testPassword},
			[]string{"must be plain, scram-sha-256 or scram-sha-512"}},
		{"password pasted as mechanism", kafkaConn{SASLMechanism: testPassword},
			[]string{"must be plain, scram-sha-256 or scram-sha-512"}},
		{"mechanism without user or password", kafkaConn{SASLMechanism: "scram-sha-256"},
			[]string{"--kafka-sasl-user is required", "--kafka-sasl-password is required"}},
		{"everything wrong at once",
			kafkaConn{TLSCert: pki.certFile, SASLMechanism: "plain", SASLPassword: testPassword},
			[]string{"--kafka-tls-cert is set but --kafka-tls is not", "go together", "--kafka-sasl-user is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := kafkaConnOpts(tc.k, nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("kafkaConnOpts = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("kafkaConnOpts = %d options, nil; want an error about %q", len(opts), tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("kafkaConnOpts error %q lacks %q", err, w)
				}
			}
			if lines := strings.Count(err.Error(), "\n"); lines < len(tc.want) {
				t.Errorf("kafkaConnOpts reported %d problems, want at least %d: %v", lines, len(tc.want), err)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("kafkaConnOpts error quotes the password: %v", err)
			}
		})
	}
}

func TestKafkaConnNeverPrintsThePassword(t *testing.T) {
	k := kafkaConn{TLS: true, SASLMechanism: "plain", SASLUser: "spine", SASLPassword: testPassword}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("connecting", "kafka", k)
	for what, s := range map[string]string{
		"slog": logs.String(), "%v": fmt.Sprintf("%v", k), "%+v": fmt.Sprintf("%+v", k), "%s": fmt.Sprintf("%s", k),
	} {
		if strings.Contains(s, testPassword) {
			t.Errorf("%s prints the password: %s", what, s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("%s does not show that a password is set: %s", what, s)
		}
	}
}

func TestKafkaFlags(t *testing.T) {
	fs, o := runFlags("run")
	env := map[string]string{"SPINE_KAFKA_SASL_PASSWORD": testPassword}
	err := fs.parse([]string{"--kafka-tls", "--kafka-tls-server-name", "b.example", "--kafka-sasl-mechanism", "scram-sha-512",
		"--kafka-sasl-user", "spine"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := kafkaConn{TLS: true, TLSServerName: "b.example", SASLMechanism: "scram-sha-512", SASLUser: "spine", SASLPassword: testPassword}
	if o.Kafka != want {
		t.Errorf("parsed %v, want %v", o.Kafka, want)
	}
	if _, err := kafkaConnOpts(o.Kafka, nil); err != nil {
		t.Errorf("kafkaConnOpts: %v", err)
	}
}

// testPKI is a CA, a broker certificate for broker.spine.test and a client
// certificate, as PEM files and as loaded values.
type testPKI struct {
	pool                                    *x509.CertPool
	server                                  tls.Certificate
	caFile, certFile, keyFile, otherKeyFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	issue := func(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	caKey := newKey()
	ca := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "spine test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, caKey, nil, nil)
	srvKey := newKey()
	srv := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "broker"}, DNSNames: []string{"broker.spine.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, srvKey, ca, caKey)
	cliKey := newKey()
	cli := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "spine"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, cliKey, ca, caKey)

	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = tls.Certificate{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey, Leaf: srv}
	p.caFile = write("ca.pem", "CERTIFICATE", ca.Raw)
	p.certFile = write("client.pem", "CERTIFICATE", cli.Raw)
	p.keyFile = write("client-key.pem", "EC PRIVATE KEY", keyDER(cliKey))
	p.otherKeyFile = write("other-key.pem", "EC PRIVATE KEY", keyDER(newKey()))
	return p
}
