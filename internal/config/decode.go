package config

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/BurntSushi/toml"
)

// decode parses data as TOML and copies every key into Default(), checking
// key names (exactly, case-sensitively) and value types itself: the TOML
// library matches struct fields case-insensitively and its type errors
// carry no structured key or line. Values are not validated here.
func decode(data []byte, name string) (cfg Config, lines lineIndex, err error) {
	var raw map[string]any
	if err := parseTOML(data, &raw); err != nil {
		e := &Error{File: name, Msg: err.Error(), Err: err}
		if pe, ok := err.(toml.ParseError); ok {
			e.Line, e.Key, e.Msg = pe.Position.Line, pe.LastKey, pe.Message
		}
		return Config{}, nil, e
	}
	lines = indexLines(string(data))
	cfg = Default()
	d := &decoder{lines: lines}
	if err := d.table("", raw, cfg.fields()); err != nil {
		err.File = name
		if err.Line == 0 {
			err.Line = lines.lineOf(err.Key)
		}
		return Config{}, nil, err
	}
	return cfg, lines, nil
}

// parseTOML runs the TOML parser, turning a panic of the parser (a bug in
// it, but reachable from a bad file) into an error.
func parseTOML(data []byte, v *map[string]any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed TOML (parser failed: %v)", r)
		}
	}()
	_, err = toml.Decode(string(data), v)
	return err
}

// setter stores one value; key is the full dotted key, for messages.
type setter func(d *decoder, key string, v any) *Error

type decoder struct {
	lines lineIndex
}

// fields is the schema: every key of calld.toml and where it goes.
func (c *Config) fields() map[string]setter {
	return map[string]setter{
		"telegram": tableOf(map[string]setter{
			"api_id":      intOf(&c.Telegram.APIID),
			"api_hash":    stringOf(&c.Telegram.APIHash),
			"dc":          intOf(&c.Telegram.DC),
			"public_keys": stringOf(&c.Telegram.PublicKeys),
			"dc_options":  dcOptionsOf(&c.Telegram.DCOptions),
			"account":     stringOf(&c.Telegram.Account),
		}),
		"state": tableOf(map[string]setter{
			"path":               stringOf(&c.State.Path),
			"journal_max_age":    durationOf(&c.State.JournalMaxAge.Duration),
			"journal_max_events": intOf(&c.State.JournalMaxEvents),
		}),
		"control": tableOf(map[string]setter{
			"socket":                  stringOf(&c.Control.Socket),
			"socket_mode":             modeOf(&c.Control.SocketMode),
			"allow_uids":              intsOf(&c.Control.AllowUIDs),
			"max_connections":         intOf(&c.Control.MaxConnections),
			"max_connections_per_uid": intOf(&c.Control.MaxConnectionsPerUID),
			"idle_timeout":            durationOf(&c.Control.IdleTimeout.Duration),
		}),
		"log": tableOf(map[string]setter{
			"level":  stringOf(&c.Log.Level),
			"format": stringOf(&c.Log.Format),
		}),
		"policy": tableOf(map[string]setter{
			"incoming":         stringOf(&c.Policy.Incoming),
			"reject_when_busy": boolOf(&c.Policy.RejectWhenBusy),
			"max_duration":     durationOf(&c.Policy.MaxDuration.Duration),
			"ring_timeout":     durationOf(&c.Policy.RingTimeout.Duration),
			"receive_timeout":  durationOf(&c.Policy.ReceiveTimeout.Duration),
		}),
		"media": tableOf(map[string]setter{
			"library_versions": stringsOf(&c.Media.LibraryVersions),
			"min_layer":        intOf(&c.Media.MinLayer),
			"max_layer":        intOf(&c.Media.MaxLayer),
			"udp_p2p":          boolOf(&c.Media.UDPP2P),
			"udp_reflector":    boolOf(&c.Media.UDPReflector),
		}),
		"metrics": tableOf(map[string]setter{
			"listen": stringOf(&c.Metrics.Listen),
		}),
	}
}

// table decodes the keys of one table in file order, so that the first
// error reported is the first one in the file.
func (d *decoder) table(prefix string, t map[string]any, fields map[string]setter) *Error {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := d.lines.lineOf(joinKey(prefix, keys[i])), d.lines.lineOf(joinKey(prefix, keys[j]))
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		key := joinKey(prefix, k)
		set, ok := fields[k]
		if !ok {
			return &Error{Key: key, Msg: "unknown key"}
		}
		if err := set(d, key, t[k]); err != nil {
			return err
		}
	}
	return nil
}

func tableOf(fields map[string]setter) setter {
	return func(d *decoder, key string, v any) *Error {
		t, ok := v.(map[string]any)
		if !ok {
			return typeError(key, "a table", v)
		}
		return d.table(key, t, fields)
	}
}

func stringOf(dst *string) setter {
	return func(_ *decoder, key string, v any) *Error {
		s, ok := v.(string)
		if !ok {
			return typeError(key, "a string", v)
		}
		*dst = s
		return nil
	}
}

func boolOf(dst *bool) setter {
	return func(_ *decoder, key string, v any) *Error {
		b, ok := v.(bool)
		if !ok {
			return typeError(key, "true or false", v)
		}
		*dst = b
		return nil
	}
}

func intOf(dst *int) setter {
	return func(_ *decoder, key string, v any) *Error {
		n, err := toInt(key, v)
		if err != nil {
			return err
		}
		*dst = n
		return nil
	}
}

func toInt(key string, v any) (int, *Error) {
	n, ok := v.(int64)
	if !ok {
		return 0, typeError(key, "an integer", v)
	}
	if n < math.MinInt || n > math.MaxInt {
		return 0, &Error{Key: key, Msg: fmt.Sprintf("%d is out of range", n)}
	}
	return int(n), nil
}

func intsOf(dst *[]int) setter {
	return func(_ *decoder, key string, v any) *Error {
		a, ok := v.([]any)
		if !ok {
			return typeError(key, "an array of integers", v)
		}
		var out []int // an empty array stays nil, like the default
		for i, x := range a {
			n, err := toInt(fmt.Sprintf("%s[%d]", key, i), x)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		*dst = out
		return nil
	}
}

func stringsOf(dst *[]string) setter {
	return func(_ *decoder, key string, v any) *Error {
		a, ok := v.([]any)
		if !ok {
			return typeError(key, "an array of strings", v)
		}
		out := []string{}
		for i, x := range a {
			s, ok := x.(string)
			if !ok {
				return typeError(fmt.Sprintf("%s[%d]", key, i), "a string", x)
			}
			out = append(out, s)
		}
		*dst = out
		return nil
	}
}

func durationOf(dst *time.Duration) setter {
	return func(_ *decoder, key string, v any) *Error {
		s, ok := v.(string)
		if !ok {
			return typeError(key, `a duration string such as "90s"`, v)
		}
		dur, err := parseDuration(s)
		if err != nil {
			return &Error{Key: key, Msg: err.Error()}
		}
		*dst = dur
		return nil
	}
}

func modeOf(dst *FileMode) setter {
	return func(_ *decoder, key string, v any) *Error {
		s, ok := v.(string)
		if !ok {
			return typeError(key, `an octal string such as "0660"`, v)
		}
		m, err := parseMode(s)
		if err != nil {
			return &Error{Key: key, Msg: err.Error()}
		}
		*dst = m
		return nil
	}
}

// dcOptionsOf accepts an array of tables, written as [[telegram.dc_options]]
// blocks or inline as dc_options = [{id = 2, addr = "..."}].
func dcOptionsOf(dst *[]DCOption) setter {
	return func(d *decoder, key string, v any) *Error {
		var tables []map[string]any
		switch a := v.(type) {
		case []map[string]any:
			tables = a
		case []any:
			for _, x := range a {
				t, ok := x.(map[string]any)
				if !ok {
					return typeError(key, "an array of tables", v)
				}
				tables = append(tables, t)
			}
		default:
			return typeError(key, "an array of tables", v)
		}
		var out []DCOption
		for i, t := range tables {
			var o DCOption
			err := d.table(fmt.Sprintf("%s[%d]", key, i), t, map[string]setter{
				"id":   intOf(&o.ID),
				"addr": stringOf(&o.Addr),
			})
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		*dst = out
		return nil
	}
}

func typeError(key, want string, v any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf("expected %s, got %s", want, tomlType(v))}
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("%T", v)
	}
}
