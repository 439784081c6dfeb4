package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spinecdp/spine/engine"
)

const usage = `spine: streaming customer-360 engine

Usage:
  spine broker   --listen ADDR --data DIR            embedded Kafka-protocol broker (development only)
  spine run      --brokers ADDR --data DIR --http ADDR --tokens T:SCOPES [--clickhouse ADDR]
  spine replica  --brokers ADDR --http ADDR --tokens T:read
                                                     lookups served from the profile stream, in a process of their own
  spine demo                                         everything on one machine, with generated traffic
  spine gen      --brokers ADDR --persons N [--truth FILE]
  spine bench    [--persons N] [--clickhouse ADDR]   measure throughput, latency and accuracy on this machine
  spine migrate  --clickhouse ADDR                   apply ClickHouse migrations
  spine export   --parquet DIR --data DIR            Parquet snapshot of profiles and identity map
  spine version

Every flag also reads SPINE_<FLAG> from the environment (--max-backlog ↔ SPINE_MAX_BACKLOG)
and a YAML file given with --config. Run 'spine COMMAND -h' for a command's flags.
`

var version = "dev"

func main() {
	// GOGC, when set, wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(engine.GCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spine:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	level := slog.LevelInfo
	if env("SPINE_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "broker":
		return cmdBroker(ctx, rest, env, log)
	case "run":
		return cmdRun(ctx, rest, env, log)
	case "replica":
		return cmdReplica(ctx, rest, env, log)
	case "demo":
		return cmdDemo(ctx, rest, env, stdout, log)
	case "gen":
		return cmdGen(ctx, rest, env, stdout, log)
	case "migrate":
		return cmdMigrate(ctx, rest, env, log)
	case "export":
		return cmdExport(ctx, rest, env, stdout, log)
	case "bench":
		return cmdBench(ctx, rest, env, stdout, log)
	case "version":
		fmt.Fprintln(stdout, "spine", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
