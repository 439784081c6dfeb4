package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/schemas/canon"
)

func cmdGen(ctx context.Context, args []string, env func(string) string, stdout io.Writer, log *slog.Logger) error {
	fs := newFlags("gen")
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka seed brokers, comma-separated")
	persons := fs.Int("persons", 1000, "customers to simulate")
	seed := fs.Int64("seed", 1, "random seed: the same seed gives the same stream")
	rate := fs.Int("rate", 0, "messages per second at most (0: as fast as possible)")
	truth := fs.String("truth", "", "file to write the ground truth to (JSON lines)")
	hard := fs.Bool("hard", true, "include the hard cases: junk values, shared devices, duplicates, late and malformed messages")
	channels := fs.String("channels", "", "channels to generate, comma-separated (default: all six)")
	prefix := fs.String("topic-prefix", "spine.", "prefix of every topic name")
	if err := parse(fs, args, env); err != nil {
		return err
	}
	cfg := gen.DefaultConfig()
	cfg.Persons, cfg.Seed, cfg.Hard, cfg.TopicPrefix = *persons, *seed, *hard, *prefix
	for _, c := range splitList(*channels) {
		cfg.Channels = append(cfg.Channels, canon.Channel(c))
	}
	g, err := gen.New(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := gen.Produce(ctx, splitList(*brokers), g, *rate, nil)
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "produced %d messages for %d persons in %s (%.0f msg/s)\n", n, *persons, el.Round(time.Millisecond), float64(n)/el.Seconds())
	if *truth != "" {
		f, err := os.Create(*truth)
		if err != nil {
			return fmt.Errorf("gen: truth: %w", err)
		}
		if err := g.WriteTruth(f); err != nil {
			f.Close()
			return fmt.Errorf("gen: truth: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("gen: truth: %w", err)
		}
		log.Info("ground truth written", "file", *truth)
	}
	return nil
}
