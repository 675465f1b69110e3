package mtproto

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/calld/calld/internal/logging"
)

// newZapLogger returns a *zap.Logger (for gotd's Options.Logger) whose
// entries are written to log with component=mtproto and event=mtproto.gotd.
// Entries below level are dropped ("" means warn; else debug, info, warn or
// error). The bridge never adds a time field: log's own context decides
// that, so a logger built with .Timestamp() gets exactly one.
func newZapLogger(log zerolog.Logger, level string) (*zap.Logger, error) {
	core, err := newZapCore(log, level)
	if err != nil {
		return nil, err
	}
	return zap.New(core), nil
}

// parseLogLevel parses the LogLevel strings of Config ("" is warn).
func parseLogLevel(level string) (zapcore.Level, error) {
	switch strings.ToLower(level) {
	case "":
		return zapcore.WarnLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", level)
}

// zapCore is a zapcore.Core writing to zerolog. gotd builds loggers With
// fields on hot paths (one per message) and mostly logs at debug, so With
// is one small allocation: the fields are kept as given, in a chain of
// cores, and converted only when an entry is written.
type zapCore struct {
	*zapRoot
	parent *zapCore        // the core With was called on; nil at the root
	fields []zapcore.Field // this link's fields, not the parent's
}

// zapRoot is what every core of one chain shares.
type zapRoot struct {
	log   zerolog.Logger
	level zapcore.Level
}

func newZapCore(log zerolog.Logger, level string) (*zapCore, error) {
	lvl, err := parseLogLevel(level)
	if err != nil {
		return nil, err
	}
	return &zapCore{zapRoot: &zapRoot{
		log:   log.With().Str(logging.FieldComponent, "mtproto").Logger(),
		level: lvl,
	}}, nil
}

// Enabled is false below the configured level and below the zerolog
// logger's own level (or the global one): zap then builds no entry.
func (c *zapCore) Enabled(l zapcore.Level) bool {
	zl := zerologLevel(l)
	return l >= c.level && zl >= c.log.GetLevel() && zl >= zerolog.GlobalLevel()
}

func (c *zapCore) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	// zap hands over the variadic slice of the With call: kept, not
	// copied.
	return &zapCore{zapRoot: c.zapRoot, parent: c, fields: fields}
}

// withFields is every field the chain up to c added, the root's first,
// in one new slice (the chain's own slices are never written).
func (c *zapCore) withFields() []zapcore.Field {
	n := 0
	for l := c; l != nil; l = l.parent {
		n += len(l.fields)
	}
	if n == 0 {
		return nil
	}
	out := make([]zapcore.Field, n)
	for l := c; l != nil; l = l.parent {
		n -= copy(out[n-len(l.fields):n], l.fields)
	}
	return out
}

func (c *zapCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *zapCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level := e.Level
	if level > zapcore.InfoLevel && cancelled(fields) {
		// A cancelled context is the stop's (or gotd's own restart of
		// a connection), not a fault: gotd warns "Got error on self"
		// when calld stops while its first users.getUsers is in flight.
		if level = zapcore.DebugLevel; !c.Enabled(level) {
			return nil
		}
	}
	ev := c.log.WithLevel(zerologLevel(level))
	if ev == nil {
		return nil
	}
	ev = ev.Str(logging.FieldEvent, logging.EventMTProtoGotd)
	if e.LoggerName != "" {
		ev = ev.Str(logging.FieldLogger, e.LoggerName)
	}
	if with := c.withFields(); len(with) > 0 {
		ev = ev.Fields(convertFields(with))
	}
	if len(fields) > 0 {
		ev = ev.Fields(convertFields(fields))
	}
	ev.Msg(e.Message)
	return nil
}

func (c *zapCore) Sync() error { return nil }

// cancelled reports whether one of fields is an error that is a context's
// cancellation.
func cancelled(fields []zapcore.Field) bool {
	for _, f := range fields {
		if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType && errors.Is(err, context.Canceled) {
			return true
		}
	}
	return false
}

// zerologLevel maps zap levels; DPanic, Panic and Fatal become error: gotd's
// logs must never stop the daemon.
func zerologLevel(l zapcore.Level) zerolog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return zerolog.DebugLevel
	case l == zapcore.InfoLevel:
		return zerolog.InfoLevel
	case l == zapcore.WarnLevel:
		return zerolog.WarnLevel
	}
	return zerolog.ErrorLevel
}

// reservedKeys are fields the zerolog line owns; zap fields with these names
// are renamed with a "gotd_" prefix so that no key appears twice.
var reservedKeys = map[string]bool{
	"time": true, "level": true, "message": true, "event": true,
	"component": true, "logger": true,
}

// convertFields encodes zap fields with zap's own map encoder (so every field
// type, including objects, arrays and namespaces, converts), then renames
// "error" to calld's "err" and drops the stack-trace "errorVerbose" variant.
func convertFields(fields []zapcore.Field) map[string]any {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make(map[string]any, len(enc.Fields))
	for k, v := range enc.Fields {
		switch {
		case strings.HasSuffix(k, "Verbose"):
			continue
		case k == "error":
			k = "err"
		case reservedKeys[k]:
			k = "gotd_" + k
		}
		out[k] = v
	}
	return out
}
