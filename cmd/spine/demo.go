package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/schemas/canon"
)

func cmdDemo(ctx context.Context, args []string, env func(string) string, stdout io.Writer, log *slog.Logger) error {
	fs, o := runFlags("demo")
	persons := fs.Int("persons", 2000, "customers to simulate")
	seed := fs.Int64("seed", 1, "random seed of the generated traffic")
	rate := fs.Int("rate", 0, "messages per second at most (0: as fast as possible)")
	brokerAddr := fs.String("broker", "127.0.0.1:0", "address of the embedded broker (port 0: any free port)")
	replicaAddr := fs.String("replica-http", "127.0.0.1:0", "address of a lookup replica that reads the profile stream (as spine replica does, here in the demo's process; port 0: any free port; empty: none)")
	fs.Lookup("data").DefValue, _ = "", fs.Set("data", "")
	if err := fs.parse(args, env); err != nil {
		return err
	}
	if o.Data == "" {
		dir, err := os.MkdirTemp("", "spine-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.Data = dir
	}
	if o.Tokens == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		o.Tokens = "demo-" + hex.EncodeToString(b[:]) + ":read+write+admin"
	}
	// The first token's secret, for the printed examples.
	token, _, _ := strings.Cut(strings.Split(o.Tokens, ",")[0], ":")
	var replicaLn net.Listener
	if *replicaAddr != "" {
		// Before anything starts: a port in use is an error at once.
		var err error
		if replicaLn, err = net.Listen("tcp", *replicaAddr); err != nil {
			return fmt.Errorf("demo: --replica-http: %w", err)
		}
		defer replicaLn.Close()
	}
	broker, err := startBroker(*brokerAddr, "", o.TopicPrefix, int32(o.Partitions), log)
	if err != nil {
		return err
	}
	defer broker.Close()
	o.Brokers = broker.ListenAddrs()
	o.NoSync = true // a demo trades durability on power loss for speed

	p, err := startProcess(ctx, o, log)
	if err != nil {
		return err
	}
	replica := ""
	if replicaLn != nil {
		stop, err := demoReplica(ctx, p, o, replicaLn, log.With("component", "replica"))
		if err != nil {
			p.failed("replica", err)
			return p.wait()
		}
		defer stop()
		replica = replicaLn.Addr().String()
	}
	demoErr := demo(ctx, p, o, *persons, *seed, *rate, token, replica, stdout)
	if demoErr != nil {
		p.failed("demo", demoErr)
	}
	return p.wait()
}

// demoReplica runs a lookup replica on the demo's profile stream, serving
// on ln, until stop, which waits for it. It takes the engine's tokens: its
// command endpoints answer 501 whatever the scope. A replica that fails
// fails the demo.
func demoReplica(ctx context.Context, p *process, o *runOptions, ln net.Listener, log *slog.Logger) (stop func(), err error) {
	ro := &replicaOptions{Brokers: o.Brokers, TopicPrefix: o.TopicPrefix, HTTP: ln.Addr().String(),
		Tokens: o.Tokens, Norm: *o, Kafka: o.Kafka, MaxMB: 1024}
	r, srv, err := startReplica(ro, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.failed("replica", r.Run(ctx)); cancel() })
	wg.Go(func() { p.failed("replica API", srv.Serve(ctx, ln)); cancel() })
	return func() { cancel(); wg.Wait(); r.Close() }, nil
}

// demo feeds generated traffic, prints progress, then where to look.
func demo(ctx context.Context, p *process, o *runOptions, persons int, seed int64, rate int, token, replica string, out io.Writer) error {
	for !p.cons.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-p.fail: // p.wait reports why
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	cfg := gen.DefaultConfig()
	cfg.Persons, cfg.Seed, cfg.Hard, cfg.TopicPrefix = persons, seed, true, o.TopicPrefix
	g, err := gen.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "spine demo: generating traffic for %d customers on all six channels\n", persons)
	produced := make(chan error, 1)
	go func() {
		_, err := gen.Produce(ctx, o.Brokers, g, rate, nil)
		produced <- err
	}()
	start, last, lastEvents := time.Now(), time.Now(), uint64(0)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	genDone, idle := false, 0
	for idle < 3 {
		select {
		case <-ctx.Done():
			return nil
		case <-p.fail:
			return nil
		case err := <-produced:
			if err != nil {
				return err
			}
			genDone = true
		case now := <-tick.C:
			s := p.engine.Stats()
			rate := float64(s.Events-lastEvents) / now.Sub(last).Seconds()
			fmt.Fprintf(out, "\r%6.1fs  events %8d  (%6.0f/s)  profiles %7d  merges %6d  conflicts %4d  sink backlog %6d ",
				now.Sub(start).Seconds(), s.Events, rate, s.Profiles, s.Merges, s.Conflicts, s.Backlog)
			if genDone && s.Events == lastEvents && s.Backlog == 0 {
				idle++
			}
			last, lastEvents = now, s.Events
		}
	}
	fmt.Fprintln(out)
	return report(ctx, p, o, g.Truth(), token, replica, out)
}

// report prints a few stitched customers and where to look at them.
func report(ctx context.Context, p *process, o *runOptions, truth gen.Truth, token, replica string, out io.Writer) error {
	api := "http://" + o.HTTP
	if host, port, err := net.SplitHostPort(o.HTTP); err == nil && (host == "" || host == "0.0.0.0") {
		api = "http://127.0.0.1:" + port
	}
	type shown struct {
		p   canon.Profile
		ids int
	}
	var best []shown
	for _, pt := range truth.Persons {
		if len(pt.Identifiers) == 0 || len(pt.EventsByChannel) < 3 {
			continue
		}
		prof, err := p.engine.Lookup(ctx, pt.Identifiers[0])
		if err != nil {
			continue
		}
		if c, ok := prof.Consent["analytics"]; ok && !c.Value {
			// Withheld from ClickHouse by the analytics policy: the query
			// printed below would not show them, so show someone else.
			continue
		}
		best = append(best, shown{prof, len(prof.Identifiers)})
		if len(best) >= 50 {
			break
		}
	}
	slices.SortFunc(best, func(a, b shown) int { return b.ids - a.ids })
	fmt.Fprintf(out, "\nStitched customers (identifiers from several channels in one profile):\n")
	var ids []string
	for _, b := range best[:min(5, len(best))] {
		var types []string
		for _, i := range b.p.Identifiers {
			if !slices.Contains(types, string(i.Type)) {
				types = append(types, string(i.Type))
			}
		}
		fmt.Fprintf(out, "  %s  %-10s %2d identifiers (%v), channels %v, orders %d\n",
			b.p.ID, b.p.Level, b.ids, types, b.p.Computed.Channels, b.p.Computed.OrderCount)
		ids = append(ids, "'"+b.p.ID+"'")
	}
	fmt.Fprintf(out, "\nDashboard: %s/  (sign in with the token %s)\n", api, token)
	fmt.Fprintf(out, "\nLookup API (token %s):\n", token)
	if len(best) > 0 {
		fmt.Fprintf(out, "  curl -H 'Authorization: Bearer %s' %s/v1/profiles/%s\n", token, api, best[0].p.ID)
		if e, ok := best[0].p.Identifier(canon.Email); ok {
			fmt.Fprintf(out, "  curl -H 'Authorization: Bearer %s' '%s/v1/profiles?type=email&value=%s'\n", token, api, e)
		}
	}
	fmt.Fprintf(out, "  metrics: %s/metrics\n", api)
	if replica != "" && len(best) > 0 {
		fmt.Fprintf(out, "\nLookup replica (reads %sprofiles; `spine replica` runs one in a process of its own):\n", o.TopicPrefix)
		fmt.Fprintf(out, "  curl -H 'Authorization: Bearer %s' http://%s/v1/profiles/%s\n", token, replica, best[0].p.ID)
	}
	if o.ClickHouse != "" && len(ids) > 0 {
		host, port, _ := net.SplitHostPort(o.ClickHouse)
		fmt.Fprintf(out, "\nClickHouse:\n  clickhouse-client --host %s --port %s --query \"SELECT profile_id, channel, count() AS events FROM %s.events_resolved WHERE profile_id IN (%s) GROUP BY profile_id, channel ORDER BY profile_id, channel\"\n",
			host, port, o.CHDatabase, strings.Join(ids, ", "))
	}
	fmt.Fprintf(out, "\nPress Ctrl-C to stop.\n")
	return nil
}
