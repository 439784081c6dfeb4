package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/sinks/parquet"
)

func cmdExport(ctx context.Context, args []string, env func(string) string, stdout io.Writer, log *slog.Logger) error {
	fs := newFlags("export")
	out := fs.String("parquet", "", "directory to write profiles.parquet and identity_map.parquet to")
	data := fs.String("data", "./spine-data", "state directory (Badger) of a stopped engine")
	if err := parse(fs, args, env); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("export: --parquet DIR is required")
	}
	cfg := engine.DefaultConfig(*data)
	cfg.Store.Logger = log
	// The state is opened like the engine opens it: Badger holds a lock on
	// the directory, so a running engine must be stopped (or its directory
	// copied) first.
	eng, err := engine.Open(cfg, log, nil)
	if err != nil {
		return fmt.Errorf("export: open state (is the engine still running on %s?): %w", *data, err)
	}
	defer eng.Close()
	res, err := parquet.Export(ctx, *out, eng)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %d profiles and %d identifiers to %s\n", res.Profiles, res.Mappings, *out)
	return nil
}
