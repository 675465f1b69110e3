package mtproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
)

func TestZapBridge(t *testing.T) {
	var buf bytes.Buffer
	base := zerolog.New(&buf).With().Timestamp().Str("service", "calld").Logger()

	tests := []struct {
		name      string
		level     string
		log       func(l *zap.Logger)
		wantLines []map[string]any // subset of keys per line
	}{
		{
			name:  "warn default drops info and debug",
			level: "",
			log: func(l *zap.Logger) {
				l.Debug("d")
				l.Info("i")
				l.Warn("w", zap.Int("n", 3))
			},
			wantLines: []map[string]any{{"level": "warn", "message": "w", "n": float64(3)}},
		},
		{
			name:  "debug keeps all, levels mapped",
			level: "debug",
			log: func(l *zap.Logger) {
				l.Debug("d")
				l.Info("i")
				l.Error("e")
				l.DPanic("p") // must not panic: development mode is off
			},
			wantLines: []map[string]any{
				{"level": "debug", "message": "d"},
				{"level": "info", "message": "i"},
				{"level": "error", "message": "e"},
				{"level": "error", "message": "p"},
			},
		},
		{
			name:  "fields, named logger, With, error renamed",
			level: "info",
			log: func(l *zap.Logger) {
				l.Named("conn").With(zap.Int64("conn_id", 7)).Info("dial",
					zap.String("addr", "127.0.0.1:1"),
					zap.Duration("took", 1500*time.Millisecond),
					zap.Bool("ok", true),
					zap.Error(errors.New("boom")),
					zap.String("time", "shadow"),
					zap.String("level", "shadow"),
				)
			},
			wantLines: []map[string]any{{
				"level": "info", "message": "dial", "logger": "conn", "conn_id": float64(7),
				"addr": "127.0.0.1:1", "took": float64(1500), "ok": true, "err": "boom",
				"gotd_time": "shadow", "gotd_level": "shadow",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			l, err := newZapLogger(base, tt.level)
			if err != nil {
				t.Fatal(err)
			}
			tt.log(l)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.wantLines) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tt.wantLines), buf.String())
			}
			for i, line := range lines {
				if n := strings.Count(line, `"time":`); n != 1 {
					t.Errorf("line %d has %d time fields: %s", i, n, line)
				}
				if n := strings.Count(line, `"level":`); n != 1 {
					t.Errorf("line %d has %d level fields: %s", i, n, line)
				}
				var got map[string]any
				if err := json.Unmarshal([]byte(line), &got); err != nil {
					t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
				}
				want := map[string]any{"component": "mtproto", "event": "mtproto.gotd", "service": "calld"}
				for k, v := range tt.wantLines[i] {
					want[k] = v
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("line %d: %s = %#v, want %#v (%s)", i, k, got[k], v, line)
					}
				}
				if _, ok := got["errorVerbose"]; ok {
					t.Errorf("line %d carries errorVerbose", i)
				}
			}
		})
	}
	if _, err := newZapLogger(base, "loud"); err == nil {
		t.Error("bad level accepted")
	}
}
