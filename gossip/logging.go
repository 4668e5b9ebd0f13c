package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// newStdLogger routes memberlist's standard-library logger into slog,
// mapping its "[LEVEL] memberlist: ..." prefixes to slog levels.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l: l.With("component", "memberlist")}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for prefix, lv := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError,
	} {
		if strings.HasPrefix(msg, prefix) {
			level = lv
			msg = strings.TrimSpace(strings.TrimPrefix(msg, prefix))
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
