package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/spinecdp/spine/schemas/canon"
)

// The lookup replica of a bench run: `spine replica` in a child process,
// reading the engine's profile stream from the bench's broker. With it the
// HTTP lookup load goes to the replica, and probes are also timed until
// the replica answers them (replica-visible).

type replicaChild struct {
	addr   string
	prio   int // SCHED_FIFO priority; 0: normal
	cmd    *exec.Cmd
	done   chan struct{} // closed when the child has exited
	err    error         // what Wait returned; read after done is closed
	stderr *tailBuffer
}

// startReplicaChild starts the replica and waits until it has read the
// profile stream (its /readyz answers 200).
func (b *benchRun) startReplicaChild(ctx context.Context, prio int) (*replicaChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("replica: find this binary: %w", err)
	}
	addr, err := freeLoopback()
	if err != nil {
		return nil, err
	}
	o := b.o
	args := []string{"replica", "--brokers", o.Brokers[0], "--topic-prefix", o.TopicPrefix, "--http", addr,
		"--api-rate-limit", "0", "--default-region", o.DefaultRegion,
		"--blocked-values", o.Blocked, "--blocked-patterns", o.BlockedPatterns, "--blocked-email-domains", o.BlockedDomains,
		"--realtime-priority", strconv.Itoa(prio)}
	r := &replicaChild{addr: addr, prio: prio, stderr: &tailBuffer{max: 8 << 10}}
	r.cmd = exec.Command(exe, args...)
	// The token by the environment, which ps does not show.
	r.cmd.Env = append(os.Environ(), "SPINE_TOKENS="+b.token+":read", "SPINE_CONFIG=")
	r.cmd.Stderr = r.stderr
	exited, err := startChild(r.cmd)
	if err != nil {
		return nil, fmt.Errorf("replica: start: %w", err)
	}
	r.done = make(chan struct{})
	go func() { r.err = <-exited; close(r.done) }()
	deadline := time.Now().Add(60 * time.Second)
	cl := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if resp, err := cl.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("replica: exited before it was ready: %v: %s", r.err, r.stderr)
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, errors.New("replica: not ready after 60 s: " + r.stderr.String())
		}
	}
}

// metrics reads the replica's /metrics.
func (r *replicaChild) metrics() ([]*dto.MetricFamily, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	return out, nil
}

// stop asks the replica to shut down and kills it if it has not within
// 10 s.
func (r *replicaChild) stop() { stopChild(r.cmd.Process, r.done, 10*time.Second) }

// watchProbesReplica asks the replica, every 10 ms, for the oldest probe
// of every partition it has not answered yet. Each ask is a lookup over
// HTTP, which the replica answers at its priority: they are fewer than
// the engine's in-process polls.
func (b *benchRun) watchProbesReplica(ctx context.Context) {
	cl := &http.Client{Timeout: 5 * time.Second}
	found := func(id string) bool {
		u := "http://" + b.replica.addr + "/v1/profiles?type=" + string(canon.AnonymousID) + "&value=" + url.QueryEscape(id)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", "Bearer "+b.token)
		resp, err := cl.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	every(ctx, 10*time.Millisecond, func() {
		for _, h := range b.probes.replicaHeads() {
			for h != nil && found(h.id) {
				h = b.probes.seenByReplica(h, time.Now())
			}
		}
	})
}
