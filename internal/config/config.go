// Package config parses calld.toml, the daemon's configuration file
// (CONTRACT §2), applies the environment overrides and validates the
// result. Parsing is strict: unknown keys, wrong types and invalid values
// are *Error values naming the key and, when known, the line.
//
// The fully commented example configuration and the systemd units live in
// configs/ at the top of the repository; a test keeps that example equal to
// Default().
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"
)

// Config is the whole configuration, one field per table of calld.toml.
type Config struct {
	Telegram Telegram `toml:"telegram"`
	State    State    `toml:"state"`
	Control  Control  `toml:"control"`
	Log      Log      `toml:"log"`
	Policy   Policy   `toml:"policy"`
	Media    Media    `toml:"media"`
	Metrics  Metrics  `toml:"metrics"`
}

// Metrics is the [metrics] table: Prometheus metrics over TCP.
type Metrics struct {
	// Listen is the host:port where GET /metrics is served over HTTP
	// besides the control socket; "" (the default) serves none. Read at
	// start only: a reload keeps the listener as it is.
	Listen string `toml:"listen"`
}

// Telegram is the [telegram] table: credentials and where to connect.
type Telegram struct {
	APIID   int    `toml:"api_id"`   // required unless --sim
	APIHash string `toml:"api_hash"` // required unless --sim; a secret: never log it
	DC      int    `toml:"dc"`       // DC to connect to first
	// PublicKeys is the path of a PEM file with the servers' RSA keys;
	// "" means gotd's built-in production keys.
	PublicKeys string `toml:"public_keys"`
	// DCOptions, when not empty, replace the built-in DC list.
	DCOptions []DCOption `toml:"dc_options"`
	// Account names the account this daemon serves (CONTRACT §5.6):
	// "" (the default) or a name CheckAccount accepts. When set, every
	// log line and metric carries it and /v1/status shows it. Read at
	// start only: a reload that changes it is refused.
	Account string `toml:"account"`
}

// DCOption is one [[telegram.dc_options]] entry.
type DCOption struct {
	ID   int    `toml:"id"`
	Addr string `toml:"addr"` // host:port
}

// State is the [state] table.
type State struct {
	Path string `toml:"path"` // the bbolt file
	// Journal retention (an extension of CONTRACT §2): events older than
	// JournalMaxAge, and the oldest beyond JournalMaxEvents, are pruned
	// at start-up and hourly. 0 keeps everything. Call records are kept.
	JournalMaxAge    Duration `toml:"journal_max_age"`
	JournalMaxEvents int      `toml:"journal_max_events"`
}

// Control is the [control] table: the control socket.
type Control struct {
	Socket     string   `toml:"socket"`
	SocketMode FileMode `toml:"socket_mode"` // written as an octal string, "0660"
	// AllowUIDs are extra uids allowed to use mutating routes; root and
	// the daemon's own uid always are.
	AllowUIDs []int `toml:"allow_uids"`
	// MaxConnections caps the connections served at once (event streams
	// included); an eighth of them is kept for root and the daemon's uid.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerUID caps the connections of one peer uid other
	// than root and the daemon's.
	MaxConnectionsPerUID int `toml:"max_connections_per_uid"`
	// IdleTimeout closes a keep-alive connection idle between requests.
	IdleTimeout Duration `toml:"idle_timeout"`
}

// Log is the [log] table.
type Log struct {
	Level  string `toml:"level"`  // LevelDebug, LevelInfo, LevelWarn or LevelError
	Format string `toml:"format"` // FormatJSON, FormatConsole or FormatAuto
}

// Policy is the [policy] table: what the daemon decides on its own.
type Policy struct {
	Incoming       string `toml:"incoming"`         // IncomingRing or IncomingReject
	RejectWhenBusy bool   `toml:"reject_when_busy"` // refuse a new incoming call while another is live
	// MaxDuration > 0 hangs up active calls that last longer; 0: no limit.
	MaxDuration Duration `toml:"max_duration"`
	// RingTimeout and ReceiveTimeout: 0 (written "" or "0s") means the
	// server's call_ring_timeout_ms / call_receive_timeout_ms.
	RingTimeout    Duration `toml:"ring_timeout"`
	ReceiveTimeout Duration `toml:"receive_timeout"`
}

// Media is the [media] table: the phoneCallProtocol calld offers in
// phone.requestCall, phone.acceptCall and phone.confirmCall (CONTRACT
// §5.5). POST /v1/calls and .../accept may override it per call.
type Media struct {
	LibraryVersions []string `toml:"library_versions"` // the media engine's library versions, at least one
	MinLayer        int      `toml:"min_layer"`        // lowest call layer spoken (> 0)
	MaxLayer        int      `toml:"max_layer"`        // highest call layer spoken (>= min_layer)
	UDPP2P          bool     `toml:"udp_p2p"`          // peer-to-peer UDP allowed
	UDPReflector    bool     `toml:"udp_reflector"`    // Telegram's UDP relays allowed
}

// DefaultMedia is the protocol calld offered before [media] existed
// (mtproto.Protocol).
func DefaultMedia() Media {
	return Media{
		LibraryVersions: []string{"4.0.0", "4.0.1", "5.0.0", "7.0.0", "8.0.0"},
		MinLayer:        65,
		MaxLayer:        92,
		UDPP2P:          true,
		UDPReflector:    true,
	}
}

// Values of the enumerated keys.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"

	FormatJSON    = "json"
	FormatConsole = "console"
	FormatAuto    = "auto"

	IncomingRing   = "ring"
	IncomingReject = "reject"
)

// Defaults that other packages and the systemd units refer to.
const (
	DefaultStatePath  = "/var/lib/calld/calld.db"
	DefaultSocket     = "/run/calld.sock"
	DefaultSocketMode = FileMode(0o660)
	DefaultDC         = 2
	// The control server's connection limits (control.Default*).
	DefaultMaxConnections       = 1024
	DefaultMaxConnectionsPerUID = 256
	DefaultIdleTimeout          = 30 * time.Second
	// DefaultPath is where the packaged unit points --config. Load does
	// not fall back to it by itself: see Path.
	DefaultPath = "/etc/calld/calld.toml"
)

// Environment variables read by Load (EnvConfig is read by Path).
const (
	EnvConfig  = "CALLD_CONFIG"
	EnvSocket  = "CALLD_SOCKET"
	EnvState   = "CALLD_STATE"
	EnvAPIID   = "CALLD_API_ID"
	EnvAPIHash = "CALLD_API_HASH"
)

// Default returns the configuration used for every key the file leaves
// out. It is exactly what configs/calld.toml spells out.
func Default() Config {
	return Config{
		Telegram: Telegram{DC: DefaultDC},
		State:    State{Path: DefaultStatePath},
		Control: Control{Socket: DefaultSocket, SocketMode: DefaultSocketMode,
			MaxConnections: DefaultMaxConnections, MaxConnectionsPerUID: DefaultMaxConnectionsPerUID,
			IdleTimeout: Duration{DefaultIdleTimeout}},
		Log:    Log{Level: LevelInfo, Format: FormatAuto},
		Policy: Policy{Incoming: IncomingRing, RejectWhenBusy: true},
		Media:  DefaultMedia(),
	}
}

// Path resolves which configuration file to read: the --config flag when
// given, else $CALLD_CONFIG, else "" (defaults only). env may be nil (no
// environment).
func Path(flag string, env func(string) string) string {
	if flag != "" {
		return flag
	}
	if env != nil {
		return env(EnvConfig)
	}
	return ""
}

// Load builds the configuration: Default(), then the file at path (none
// when path is ""), then the environment overrides CALLD_API_ID,
// CALLD_API_HASH, CALLD_SOCKET and CALLD_STATE (an empty value counts as
// unset), and
// validates the result. env is usually os.Getenv; nil means no environment.
//
// CALLD_CONFIG is not read here: the caller resolves the path first (see
// Path). Load validates everything except that credentials are present,
// because only the caller knows whether the daemon runs with --sim: a
// caller that needs them must also call c.Validate(sim).
//
// Every error is an *Error.
func Load(path string, env func(string) string) (Config, error) {
	cfg := Default()
	var lines lineIndex
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			var pe *fs.PathError
			msg := err.Error()
			if errors.As(err, &pe) {
				msg = pe.Err.Error()
			}
			return Config{}, &Error{File: path, Msg: "cannot read: " + msg, Err: err}
		}
		cfg, lines, err = decode(data, path)
		if err != nil {
			return Config{}, err
		}
	}
	fromEnv := map[string]string{} // config key -> environment variable
	if env != nil {
		if s := env(EnvAPIID); s != "" {
			id, err := strconv.Atoi(s)
			if err != nil {
				return Config{}, &Error{Key: EnvAPIID, Msg: fmt.Sprintf("not an integer: %q", s)}
			}
			cfg.Telegram.APIID = id
			fromEnv["telegram.api_id"] = EnvAPIID
		}
		if s := env(EnvAPIHash); s != "" {
			cfg.Telegram.APIHash = s
			fromEnv["telegram.api_hash"] = EnvAPIHash
		}
		if s := env(EnvSocket); s != "" {
			cfg.Control.Socket = s
			fromEnv["control.socket"] = EnvSocket
		}
		if s := env(EnvState); s != "" {
			cfg.State.Path = s
			fromEnv["state.path"] = EnvState
		}
	}
	if err := cfg.Validate(true); err != nil {
		var e *Error
		if errors.As(err, &e) {
			if v, ok := fromEnv[e.Key]; ok {
				e.Msg += " (from $" + v + ")"
			} else if path != "" {
				e.File, e.Line = path, lines.lineOf(e.Key)
			}
		}
		return Config{}, err
	}
	return cfg, nil
}

// Parse decodes and validates the contents of a configuration file; name
// is used in error messages (usually the file's path). Keys the file leaves
// out keep their Default() values. The result passes Validate(true); the
// credentials check is left to the caller (see Load).
//
// Every error is an *Error; it names the line whenever the key is written
// in the file.
func Parse(data []byte, name string) (Config, error) {
	cfg, lines, err := decode(data, name)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(true); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File, e.Line = name, lines.lineOf(e.Key)
		}
		return Config{}, err
	}
	return cfg, nil
}

// Error is a configuration error. The CLI maps it to exit status 2.
type Error struct {
	File string // the file name given to Parse or Load; "" for the environment
	Line int    // 1-based line in File; 0 when not known
	Key  string // dotted key ("policy.incoming", "telegram.dc_options[0].addr") or an environment variable
	Msg  string
	Err  error // underlying error, if any
}

// Error formats the error as "file:line: key: message", leaving out the
// parts that are not known.
func (e *Error) Error() string {
	s := ""
	switch {
	case e.File != "" && e.Line > 0:
		s = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	case e.File != "":
		s = e.File + ": "
	case e.Line > 0:
		s = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Key != "" {
		s += e.Key + ": "
	}
	return s + e.Msg
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Duration is a time.Duration written as a Go duration string ("90s",
// "1h30m"); "" means 0.
type Duration struct {
	time.Duration
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// UnmarshalText reads a Go duration string; "" is 0.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use Go syntax such as \"90s\" or \"1h30m\")", s)
	}
	return v, nil
}

// FileMode is a file mode written as an octal string ("0660").
type FileMode os.FileMode

// Perm returns the mode as an os.FileMode.
func (m FileMode) Perm() os.FileMode { return os.FileMode(m) }

// String writes the mode in octal with a leading 0, e.g. "0660".
func (m FileMode) String() string { return fmt.Sprintf("%#04o", uint32(m)) }

// MarshalText writes the mode like String.
func (m FileMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads an octal string of at most 0777 ("0660", "660" or
// "0o660").
func (m *FileMode) UnmarshalText(b []byte) error {
	v, err := parseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func parseMode(s string) (FileMode, error) {
	t := s
	if len(t) > 2 && (t[:2] == "0o" || t[:2] == "0O") {
		t = t[2:]
	}
	if t == "" {
		return 0, fmt.Errorf("invalid mode %q: want an octal string such as \"0660\"", s)
	}
	v, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid mode %q: want an octal string such as \"0660\"", s)
	}
	if v > 0o777 {
		return 0, fmt.Errorf("invalid mode %q: permission bits only (at most 0777)", s)
	}
	return FileMode(v), nil
}
