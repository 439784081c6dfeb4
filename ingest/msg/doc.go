// Package msg holds what every channel decoder shares: the Reject error with
// its bounded set of reasons, and bounded reading of JSON messages.
package msg
