package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// channelTopics are the default input topic names; outputs follow.
func allTopics(prefix string) []string {
	var out []string
	for _, s := range []string{"web", "mobile", "iot", "pos", "support", "ciam", "dlq", "profiles", "identity"} {
		out = append(out, prefix+s)
	}
	return out
}

// startBroker starts the embedded Kafka-protocol broker on addr, persisted
// in dir when dir is set. It is for development, demos and tests only.
func startBroker(addr, dir, prefix string, partitions int32, log *slog.Logger) (*kfake.Cluster, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.SeedTopics(partitions, allTopics(prefix)...),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start on %s: %w", addr, err)
	}
	log.Info("embedded broker listening (development use only)", "addr", c.ListenAddrs()[0], "data", dir)
	return c, nil
}

func cmdBroker(ctx context.Context, args []string, env func(string) string, log *slog.Logger) error {
	fs := newFlags("broker")
	listen := fs.String("listen", "127.0.0.1:9092", "address to listen on")
	data := fs.String("data", "", "directory to persist topics and offsets in (empty: memory only)")
	prefix := fs.String("topic-prefix", "spine.", "prefix of the topics to create")
	parts := fs.Int("partitions", 3, "partitions per topic")
	if err := parse(fs, args, env); err != nil {
		return err
	}
	c, err := startBroker(*listen, *data, *prefix, int32(*parts), log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	c.Close()
	return nil
}
