package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/spinecdp/spine/sinks/clickhouse"
)

func cmdMigrate(ctx context.Context, args []string, env func(string) string, log *slog.Logger) error {
	fs := newFlags("migrate")
	addr := fs.String("clickhouse", "", "ClickHouse native-protocol address host:port")
	dia := fs.String("clickhouse-dialect", "auto", "schema dialect: modern, legacy or auto")
	db := fs.String("clickhouse-database", "spine", "ClickHouse database")
	user := fs.String("clickhouse-user", "default", "ClickHouse user")
	pass := fs.String("clickhouse-password", "", "ClickHouse password")
	if err := parse(fs, args, env); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("migrate: --clickhouse is required")
	}
	cfg := clickhouse.DefaultConfig(*addr)
	cfg.Database, cfg.Username, cfg.Password = *db, *user, *pass
	var err error
	if cfg.Dialect, err = dialect(*dia); err != nil {
		return err
	}
	s, err := clickhouse.Open(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	log.Info("migrations applied", "database", *db, "dialect", s.Dialect())
	return nil
}
