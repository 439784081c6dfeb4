// Package kafkatest starts a real Kafka-protocol broker (franz-go's kfake) on
// a random loopback TCP port for tests, and offers small produce and consume
// helpers, in the spirit of net/http/httptest. Tests talk to it over TCP with
// the same franz-go client the product uses, so nothing about Kafka is
// mocked. It is for tests only: nothing outside _test.go files should import
// it.
package kafkatest
