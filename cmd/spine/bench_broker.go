package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// brokerChild is the bench's Kafka-protocol broker, run as `spine broker`
// in a child process. In the bench's own process it would hold every
// produced record in the engine's heap (gigabytes at the default size,
// all of it for the garbage collector to mark) and run its goroutines on
// the engine's scheduler, where no deployment has its Kafka.
type brokerChild struct {
	addr   string
	cmd    *exec.Cmd
	stderr *tailBuffer // the broker's log, shown only if it fails
	done   chan struct{}
	err    error // what Wait returned; read after done is closed
}

// startBrokerChild starts the broker and waits until it accepts
// connections.
func startBrokerChild(ctx context.Context, prefix string, partitions int) (*brokerChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("broker: find this binary: %w", err)
	}
	addr, err := freeLoopback()
	if err != nil {
		return nil, fmt.Errorf("broker: pick a port: %w", err)
	}
	b := &brokerChild{addr: addr, stderr: &tailBuffer{max: 4 << 10}, done: make(chan struct{})}
	b.cmd = exec.Command(exe, "broker", "--listen", addr, "--topic-prefix", prefix, "--partitions", strconv.Itoa(partitions))
	b.cmd.Env = os.Environ()
	b.cmd.Stderr = b.stderr
	exited, err := startChild(b.cmd)
	if err != nil {
		return nil, fmt.Errorf("broker: start: %w", err)
	}
	go func() {
		b.err = <-exited
		close(b.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return b, nil
		}
		if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("broker: not listening on %s after 30s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			b.stop()
			return nil, ctx.Err()
		case <-b.done:
			return nil, b.exited()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exited describes the broker's unexpected exit; call after done is closed.
func (b *brokerChild) exited() error {
	err := b.err
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("broker: exited (%w); its last output: %s", err, b.stderr.String())
}

// stop asks the broker to shut down and kills it if it has not within 5s.
func (b *brokerChild) stop() { stopChild(b.cmd.Process, b.done, 5*time.Second) }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
