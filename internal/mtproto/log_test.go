package mtproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
			name:  "a cancelled context is not a warning",
			level: "",
			log: func(l *zap.Logger) {
				l.Warn("Got error on self", zap.Error(fmt.Errorf("waitSession: %w", context.Canceled)))
				l.Warn("w", zap.Error(errors.New("boom")))
			},
			wantLines: []map[string]any{{"level": "warn", "message": "w", "err": "boom"}},
		},
		{
			name:  "a cancelled context at debug",
			level: "debug",
			log: func(l *zap.Logger) {
				l.Error("Got error on self", zap.Error(fmt.Errorf("waitSession: %w", context.Canceled)))
			},
			wantLines: []map[string]any{{"level": "debug", "message": "Got error on self", "err": "waitSession: context canceled"}},
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
		{
			name:  "With chains: each logger has its own ancestors' fields",
			level: "info",
			log: func(l *zap.Logger) {
				conn := l.With(zap.Int64("conn_id", 7))
				a := conn.With(zap.String("type_id", "a"))
				b := conn.With(zap.String("type_id", "b"), zap.Int("n", 2))
				a.Info("first")
				b.Info("second")
				conn.Info("third")
			},
			wantLines: []map[string]any{
				{"level": "info", "message": "first", "conn_id": float64(7), "type_id": "a", "n": nil},
				{"level": "info", "message": "second", "conn_id": float64(7), "type_id": "b", "n": float64(2)},
				{"level": "info", "message": "third", "conn_id": float64(7), "type_id": nil, "n": nil}, // nil: absent
			},
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

// countingObject counts how often zap encodes it.
type countingObject struct{ n *int }

func (o countingObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	*o.n++
	enc.AddString("k", "v")
	return nil
}

// TestZapBridgeConvertsOnlyWrittenFields: gotd builds loggers With fields
// and logs at debug on every message; below the level nothing is converted
// (neither the With fields nor the entry's), and a written entry converts
// its With fields once.
func TestZapBridgeConvertsOnlyWrittenFields(t *testing.T) {
	for _, tc := range []struct {
		name     string
		zlLevel  zerolog.Level
		level    string
		log      func(l *zap.Logger, f func() zap.Field)
		want     int // conversions
		wantLine bool
	}{
		{"With then debug at warn", zerolog.DebugLevel, "", func(l *zap.Logger, f func() zap.Field) {
			l.With(f()).Debug("d", f())
		}, 0, false},
		{"With chain then info at warn", zerolog.DebugLevel, "warn", func(l *zap.Logger, f func() zap.Field) {
			l.With(f()).With(f()).Info("i", f())
		}, 0, false},
		{"debug core under an info zerolog logger", zerolog.InfoLevel, "debug", func(l *zap.Logger, f func() zap.Field) {
			l.With(f()).Debug("d", f())
		}, 0, false},
		{"written entry converts each field once", zerolog.DebugLevel, "warn", func(l *zap.Logger, f func() zap.Field) {
			l.With(f()).Warn("w", f())
		}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := newZapLogger(zerolog.New(&buf).Level(tc.zlLevel), tc.level)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			tc.log(l, func() zap.Field { return zap.Object("obj", countingObject{&n}) })
			if n != tc.want {
				t.Errorf("%d conversions, want %d", n, tc.want)
			}
			if got := buf.Len() > 0; got != tc.wantLine {
				t.Errorf("line written %v, want %v: %s", got, tc.wantLine, buf.String())
			}
		})
	}
}
