package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kslog adapts franz-go's logger to slog, like franz-go's plugin/kslog.
// kgo logs protocol events with key/value pairs (broker, topic, partition,
// err); it never logs record keys or values, so nothing here can carry PII
// from a message.
type kslog struct{ l *slog.Logger }

func newKslog(l *slog.Logger) kgo.Logger { return kslog{l.With("component", "kgo")} }

// Level reports the most verbose level slog would print, so that kgo does
// not build debug key/value pairs nobody reads.
func (k kslog) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case k.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case k.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (k kslog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var sl slog.Level
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelInfo:
		sl = slog.LevelInfo
	case kgo.LogLevelDebug:
		sl = slog.LevelDebug
	default:
		return
	}
	k.l.Log(context.Background(), sl, msg, keyvals...)
}
