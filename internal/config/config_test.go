package config

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

const examplePath = "../../configs/calld.toml"

func readExample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The shipped example must parse to exactly Default().
func TestExampleIsDefault(t *testing.T) {
	cfg, err := Parse(readExample(t), "calld.toml")
	if err != nil {
		t.Fatalf("Parse(example): %v", err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("example differs from Default():\n got %+v\nwant %+v", cfg, Default())
	}
	// An empty file is the same as the example.
	empty, err := Parse(nil, "empty.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(empty, Default()) {
		t.Fatalf("empty file: got %+v", empty)
	}
}

// The error quoted in the example's header comment is the real one.
func TestExampleQuotedError(t *testing.T) {
	data := readExample(t)
	typo := bytes.Replace(data, []byte("\nincoming = "), []byte("\nincomng = "), 1)
	_, err := Parse(typo, "calld.toml")
	if err == nil {
		t.Fatal("typo accepted")
	}
	if !bytes.Contains(data, []byte("#   "+err.Error()+"\n")) {
		t.Fatalf("example header does not quote the real error %q", err)
	}
}

// Every key that Default() encodes to is written (uncommented) in the
// example, and the example has no key that Default() lacks.
func TestExampleListsEveryKey(t *testing.T) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(Default()); err != nil {
		t.Fatal(err)
	}
	keys := func(data string) []string {
		var m map[string]any
		md, err := toml.Decode(data, &m)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range md.Keys() {
			out = append(out, k.String())
		}
		sort.Strings(out)
		return out
	}
	// The encoder leaves out nil slices: allow_uids is the one such key
	// the example writes.
	want := append(keys(buf.String()), "control.allow_uids")
	sort.Strings(want)
	got := keys(string(readExample(t)))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("example keys\n got %v\nwant %v", got, want)
	}
}

// Default() encoded as TOML parses back to itself, and so does a config
// with every key changed.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.pem")
	writePEM(t, keys)
	full := Config{
		Telegram: Telegram{APIID: 12345, APIHash: "0123456789abcdef0123456789abcdef", DC: 4, PublicKeys: keys, Account: "alice",
			DCOptions: []DCOption{{ID: 4, Addr: "127.0.0.1:4430"}, {ID: 4, Addr: "[::1]:443"}}},
		State: State{Path: "/tmp/x.db"},
		Control: Control{Socket: "/tmp/x.sock", SocketMode: 0o600, AllowUIDs: []int{1000, 1001},
			MaxConnections: 64, MaxConnectionsPerUID: 8, IdleTimeout: Duration{5 * time.Second}},
		Log: Log{Level: LevelDebug, Format: FormatJSON},
		Policy: Policy{Incoming: IncomingReject, RejectWhenBusy: false, MaxDuration: Duration{2 * time.Hour},
			RingTimeout: Duration{90 * time.Second}, ReceiveTimeout: Duration{20 * time.Second}},
		Media: Media{LibraryVersions: []string{"11.0.0"}, MinLayer: 92, MaxLayer: 92, UDPP2P: false, UDPReflector: true},
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"default", Default()}, {"full", full}} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := toml.NewEncoder(&buf).Encode(tc.cfg); err != nil {
				t.Fatal(err)
			}
			got, err := Parse(buf.Bytes(), "encoded.toml")
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, buf.String())
			}
			if !reflect.DeepEqual(got, tc.cfg) {
				t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", got, tc.cfg, buf.String())
			}
		})
	}
}

func writePEM(t testing.TB, path string) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte{1, 2, 3}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParseGood(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.pem")
	writePEM(t, keys)
	tests := []struct {
		name string
		in   string
		want func(c *Config)
	}{
		{"credentials", "[telegram]\napi_id = 42\napi_hash = \"abc\"\n", func(c *Config) {
			c.Telegram.APIID, c.Telegram.APIHash = 42, "abc"
		}},
		{"dotted keys at top level", "telegram.dc = 5\nlog.level = \"warn\"\n", func(c *Config) {
			c.Telegram.DC, c.Log.Level = 5, LevelWarn
		}},
		{"inline table", "log = {level = \"error\", format = \"console\"}\n", func(c *Config) {
			c.Log = Log{Level: LevelError, Format: FormatConsole}
		}},
		{"dc_options blocks", "[telegram]\ndc = 7\n[[telegram.dc_options]]\nid = 7\naddr = \"127.0.0.1:4430\"\n[[telegram.dc_options]]\nid = 8\naddr = \"example.org:443\"\n", func(c *Config) {
			c.Telegram.DC = 7
			c.Telegram.DCOptions = []DCOption{{7, "127.0.0.1:4430"}, {8, "example.org:443"}}
		}},
		{"dc_options inline", "[telegram]\ndc_options = [{id = 2, addr = \"[::1]:4430\"}]\n", func(c *Config) {
			c.Telegram.DCOptions = []DCOption{{2, "[::1]:4430"}}
		}},
		{"public keys", "[telegram]\npublic_keys = '" + keys + "'\n", func(c *Config) { c.Telegram.PublicKeys = keys }},
		{"socket mode forms", "[control]\nsocket_mode = \"600\"\n", func(c *Config) { c.Control.SocketMode = 0o600 }},
		{"socket mode 0o", "[control]\nsocket_mode = \"0o640\"\n", func(c *Config) { c.Control.SocketMode = 0o640 }},
		{"allow uids", "[control]\nallow_uids = [0, 1000,\n  65534]\n", func(c *Config) { c.Control.AllowUIDs = []int{0, 1000, 65534} }},
		{"empty allow uids stays nil", "[control]\nallow_uids = []\n", func(c *Config) {}},
		{"connection limits", "[control]\nmax_connections = 4096\nmax_connections_per_uid = 1024\nidle_timeout = \"2m\"\n", func(c *Config) {
			c.Control.MaxConnections, c.Control.MaxConnectionsPerUID = 4096, 1024
			c.Control.IdleTimeout = Duration{2 * time.Minute}
		}},
		{"durations", "[policy]\nmax_duration = \"1h30m\"\nring_timeout = \"45s\"\nreceive_timeout = \"0s\"\n", func(c *Config) {
			c.Policy.MaxDuration = Duration{90 * time.Minute}
			c.Policy.RingTimeout = Duration{45 * time.Second}
		}},
		{"empty duration is zero", "[policy]\nmax_duration = \"\"\n", func(c *Config) {}},
		{"journal retention", "[state]\njournal_max_age = \"720h\"\njournal_max_events = 100000\n", func(c *Config) {
			c.State.JournalMaxAge.Duration = 720 * time.Hour
			c.State.JournalMaxEvents = 100000
		}},
		{"policy", "[policy]\nincoming = \"reject\"\nreject_when_busy = false\n", func(c *Config) {
			c.Policy.Incoming, c.Policy.RejectWhenBusy = IncomingReject, false
		}},
		{"metrics listen", "[metrics]\nlisten = \"127.0.0.1:9469\"\n", func(c *Config) { c.Metrics.Listen = "127.0.0.1:9469" }},
		{"metrics listen any port, every interface", "[metrics]\nlisten = \":0\"\n", func(c *Config) { c.Metrics.Listen = ":0" }},
		{"comments and blank lines", "# hi\n\n[state] # trailing\npath = \"/x/y.db\" # c\n", func(c *Config) { c.State.Path = "/x/y.db" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in), "t.toml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("s", maxSocketPath)
	tests := []struct {
		name string
		in   string
		key  string
		line int
		msg  string // substring of Msg
	}{
		// Syntax.
		{"syntax", "[telegram]\napi_id = = 3\n", "telegram.api_id", 2, "expected value"},
		{"duplicate key", "[log]\nlevel = \"info\"\nlevel = \"warn\"\n", "log.level", 3, "already been defined"},
		{"unterminated string", "[state]\npath = \"/x\n", "state.path", 2, ""},

		// Unknown keys.
		{"unknown table", "[telegramm]\napi_id = 1\n", "telegramm", 1, "unknown key"},
		{"unknown top-level key", "\n\nfoo = 1\n", "foo", 3, "unknown key"},
		{"unknown key", "[policy]\nincoming = \"ring\"\n\nincomng = \"reject\"\n", "policy.incomng", 4, "unknown key"},
		{"wrong case", "[log]\nLevel = \"info\"\n", "log.Level", 2, "unknown key"},
		{"unknown dotted", "[telegram]\nfoo.bar = 1\n", "telegram.foo", 2, "unknown key"},
		{"unknown quoted", "[control]\n\"so cket\" = \"x\"\n", `control."so cket"`, 2, "unknown key"},
		{"unknown in inline table", "[telegram]\ndc_options = [{id = 2, adr = \"x:1\"}]\n", "telegram.dc_options[0].adr", 2, "unknown key"},
		{"unknown in second dc option", "[[telegram.dc_options]]\nid = 2\naddr = \"a:1\"\n[[telegram.dc_options]]\nid = 2\nhost = \"b\"\n", "telegram.dc_options[1].host", 6, "unknown key"},
		{"unknown in inline log", "log = {level = \"info\", colour = true}\n", "log.colour", 1, "unknown key"},

		// Wrong types, every key.
		{"table as value", "telegram = 5\n", "telegram", 1, "expected a table, got an integer"},
		{"api_id string", "[telegram]\napi_id = \"123\"\n", "telegram.api_id", 2, "expected an integer, got a string"},
		{"api_id float", "[telegram]\napi_id = 1.5\n", "telegram.api_id", 2, "expected an integer, got a float"},
		{"api_hash int", "[telegram]\napi_hash = 5\n", "telegram.api_hash", 2, "expected a string, got an integer"},
		{"dc string", "[telegram]\ndc = \"2\"\n", "telegram.dc", 2, "expected an integer"},
		{"public_keys bool", "[telegram]\npublic_keys = false\n", "telegram.public_keys", 2, "expected a string, got a boolean"},
		{"dc_options table", "[telegram.dc_options]\nid = 2\n", "telegram.dc_options", 1, "expected an array of tables, got a table"},
		{"dc_options ints", "[telegram]\ndc_options = [1, 2]\n", "telegram.dc_options", 2, "expected an array of tables"},
		{"dc id string", "[[telegram.dc_options]]\nid = \"2\"\naddr = \"a:1\"\n", "telegram.dc_options[0].id", 2, "expected an integer"},
		{"dc addr int", "[[telegram.dc_options]]\nid = 2\naddr = 443\n", "telegram.dc_options[0].addr", 3, "expected a string"},
		{"state path array", "[state]\npath = [\"a\"]\n", "state.path", 2, "expected a string, got an array"},
		{"state not table", "state = \"/x.db\"\n", "state", 1, "expected a table, got a string"},
		{"socket int", "[control]\nsocket = 1\n", "control.socket", 2, "expected a string"},
		{"socket_mode int", "[control]\nsocket_mode = 0o660\n", "control.socket_mode", 2, "expected an octal string"},
		{"allow_uids int", "[control]\nallow_uids = 1000\n", "control.allow_uids", 2, "expected an array of integers, got an integer"},
		{"allow_uids strings", "[control]\nallow_uids = [\n  1000,\n  \"bob\",\n]\n", "control.allow_uids[1]", 2, "expected an integer, got a string"},
		{"level int", "[log]\nlevel = 1\n", "log.level", 2, "expected a string"},
		{"format bool", "[log]\nformat = true\n", "log.format", 2, "expected a string"},
		{"incoming bool", "[policy]\nincoming = false\n", "policy.incoming", 2, "expected a string"},
		{"reject_when_busy string", "[policy]\nreject_when_busy = \"yes\"\n", "policy.reject_when_busy", 2, "expected true or false, got a string"},
		{"max_duration int", "[policy]\nmax_duration = 60\n", "policy.max_duration", 2, "expected a duration string"},
		{"ring_timeout date", "[policy]\nring_timeout = 2024-01-01\n", "policy.ring_timeout", 2, "got a date-time"},
		{"receive_timeout float", "[policy]\nreceive_timeout = 1.5\n", "policy.receive_timeout", 2, "got a float"},

		// Invalid values, every key that has rules.
		{"api_id negative", "[telegram]\napi_id = -1\n", "telegram.api_id", 2, "out of range"},
		{"api_id too big", "[telegram]\napi_id = 4294967296\n", "telegram.api_id", 2, "out of range"},
		{"api_hash space", "[telegram]\napi_hash = \"abc \"\n", "telegram.api_hash", 2, "spaces"},
		{"account slash", "[telegram]\naccount = \"a/b\"\n", "telegram.account", 2, "not an account name"},
		{"account not a string", "[telegram]\naccount = 1\n", "telegram.account", 2, "expected a string"},
		{"dc zero", "[telegram]\ndc = 0\n", "telegram.dc", 2, "not a DC id"},
		{"dc six without options", "[telegram]\ndc = 6\n", "telegram.dc", 2, "1..5"},
		{"dc not among options", "[telegram]\ndc = 3\n[[telegram.dc_options]]\nid = 2\naddr = \"a:1\"\n", "telegram.dc", 2, "not among"},
		{"dc default not among options", "[[telegram.dc_options]]\nid = 3\naddr = \"a:1\"\n", "telegram.dc", 0, "DC 2 is not among"},
		{"dc option id zero", "[[telegram.dc_options]]\nid = 0\naddr = \"a:1\"\n", "telegram.dc_options[0].id", 2, "not a DC id"},
		{"dc option no port", "[[telegram.dc_options]]\nid = 2\naddr = \"127.0.0.1\"\n", "telegram.dc_options[0].addr", 3, "not host:port"},
		{"dc option bad port", "[[telegram.dc_options]]\nid = 2\naddr = \"h:99999\"\n", "telegram.dc_options[0].addr", 3, "port"},
		{"dc option no host", "[telegram]\ndc_options = [{id = 2, addr = \":443\"}]\n", "telegram.dc_options[0].addr", 2, "host"},
		{"public_keys missing", "[telegram]\npublic_keys = \"" + filepath.Join(dir, "nope.pem") + "\"\n", "telegram.public_keys", 2, "cannot read"},
		{"public_keys not PEM", "[telegram]\npublic_keys = \"" + notPEM + "\"\n", "telegram.public_keys", 2, "no PEM block"},
		{"state path empty", "[state]\npath = \"\"\n", "state.path", 2, "empty"},
		{"state path NUL", "[state]\npath = \"a\\u0000b\"\n", "state.path", 2, "NUL"},
		{"socket empty", "[control]\nsocket = ''\n", "control.socket", 2, "empty"},
		{"socket too long", "[control]\nsocket = \"" + long + "\"\n", "control.socket", 2, "longer than"},
		{"socket_mode not octal", "[control]\nsocket_mode = \"0690\"\n", "control.socket_mode", 2, "octal"},
		{"socket_mode too big", "[control]\nsocket_mode = \"01777\"\n", "control.socket_mode", 2, "at most 0777"},
		{"socket_mode empty", "[control]\nsocket_mode = \"\"\n", "control.socket_mode", 2, "octal"},
		{"allow_uids negative", "[control]\nallow_uids = [1, -1]\n", "control.allow_uids[1]", 2, "not a uid"},
		{"allow_uids too big", "[control]\nallow_uids = [4294967295]\n", "control.allow_uids[0]", 2, "not a uid"},
		{"max_connections zero", "[control]\nmax_connections = 0\n", "control.max_connections", 2, "at least 2"},
		{"max_connections string", "[control]\nmax_connections = \"many\"\n", "control.max_connections", 2, "expected an integer"},
		{"max_connections_per_uid zero", "[control]\nmax_connections_per_uid = 0\n", "control.max_connections_per_uid", 2, "at least 1"},
		{"max_connections_per_uid above the cap", "[control]\nmax_connections = 16\nmax_connections_per_uid = 17\n", "control.max_connections_per_uid", 3, "at most max_connections (16)"},
		{"idle_timeout zero", "[control]\nidle_timeout = \"0s\"\n", "control.idle_timeout", 2, "positive"},
		{"idle_timeout word", "[control]\nidle_timeout = \"long\"\n", "control.idle_timeout", 2, "invalid duration"},
		{"level", "[log]\nlevel = \"verbose\"\n", "log.level", 2, `"verbose" is not one of debug, info, warn, error`},
		{"level case", "[log]\nlevel = \"INFO\"\n", "log.level", 2, "not one of"},
		{"format", "[log]\nformat = \"text\"\n", "log.format", 2, "not one of json, console, auto"},
		{"incoming", "[policy]\nincoming = \"accept\"\n", "policy.incoming", 2, "not one of ring, reject"},
		{"no library versions", "[media]\nlibrary_versions = []\n", "media.library_versions", 2, "at least one"},
		{"blank library version", "[media]\nlibrary_versions = [\"4.0.0\", \"\"]\n", "media.library_versions[1]", 2, "not a version"},
		{"library version not a string", "[media]\nlibrary_versions = [4]\n", "media.library_versions[0]", 2, "expected a string"},
		{"min layer zero", "[media]\nmin_layer = 0\n", "media.min_layer", 2, "not a layer"},
		{"metrics listen no port", "[metrics]\nlisten = \"127.0.0.1\"\n", "metrics.listen", 2, "not host:port"},
		{"metrics listen bad port", "\n[metrics]\nlisten = \"127.0.0.1:99999\"\n", "metrics.listen", 3, "valid port"},
		{"metrics listen not a string", "[metrics]\nlisten = 9469\n", "metrics.listen", 2, ""},
		{"max below min", "[media]\nmin_layer = 92\nmax_layer = 65\n", "media.max_layer", 3, "below media.min_layer"},
		{"no transport", "[media]\nudp_p2p = false\nudp_reflector = false\n", "media.udp_reflector", 3, "no transport"},
		{"unknown media key", "[media]\nlayer = 92\n", "media.layer", 2, "unknown key"},
		{"max_duration negative", "[policy]\nmax_duration = \"-1s\"\n", "policy.max_duration", 2, "negative"},
		{"journal_max_events negative", "[state]\njournal_max_events = -1\n", "state.journal_max_events", 2, "negative"},
		{"journal_max_age word", "[state]\njournal_max_age = \"forever\"\n", "state.journal_max_age", 2, "invalid duration"},
		{"max_duration no unit", "[policy]\nmax_duration = \"60\"\n", "policy.max_duration", 2, "invalid duration"},
		{"ring_timeout garbage", "[policy]\nring_timeout = \"soon\"\n", "policy.ring_timeout", 2, "invalid duration"},
		{"receive_timeout negative", "[policy]\nreceive_timeout = \"-5m\"\n", "policy.receive_timeout", 2, "negative"},

		// The first error in file order wins.
		{"first of two", "[policy]\nincoming = \"x\"\n[log]\nlevel = \"y\"\nzzz = 1\n", "log.zzz", 5, "unknown key"},
		{"first type error by line", "[log]\nformat = 1\nlevel = 2\n", "log.format", 2, "expected a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "t.toml")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %T %v", err, err)
			}
			if e.Key != tc.key || e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) || e.File != "t.toml" {
				t.Fatalf("got file=%q key=%q line=%d msg=%q\nwant key=%q line=%d msg~%q", e.File, e.Key, e.Line, e.Msg, tc.key, tc.line, tc.msg)
			}
			prefix := "t.toml:"
			if tc.line == 0 {
				prefix = "t.toml: "
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "calld.toml", Line: 12, Key: "policy.incomng", Msg: "unknown key"}, "calld.toml:12: policy.incomng: unknown key"},
		{Error{File: "calld.toml", Key: "telegram.api_id", Msg: "required"}, "calld.toml: telegram.api_id: required"},
		{Error{Key: "CALLD_API_ID", Msg: "not an integer"}, "CALLD_API_ID: not an integer"},
		{Error{Line: 3, Msg: "bad"}, "line 3: bad"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestValidateCredentials(t *testing.T) {
	tests := []struct {
		name    string
		id      int
		hash    string
		sim     bool
		wantKey string
	}{
		{"sim needs none", 0, "", true, ""},
		{"real needs id", 0, "abc", false, "telegram.api_id"},
		{"real needs hash", 1, "", false, "telegram.api_hash"},
		{"real with both", 1, "abc", false, ""},
		{"sim still checks range", -5, "", true, "telegram.api_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Telegram.APIID, c.Telegram.APIHash = tc.id, tc.hash
			err := c.Validate(tc.sim)
			var e *Error
			switch {
			case tc.wantKey == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantKey != "" && (!errors.As(err, &e) || e.Key != tc.wantKey):
				t.Fatalf("got %v, want error on %s", err, tc.wantKey)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", "[telegram]\napi_id = 1\napi_hash = \"filehash\"\n[control]\nsocket = \"/file.sock\"\n")
	badLevel := write("bad.toml", "[telegram]\napi_id = 1\n\n[log]\nlevel = \"loud\"\n")
	badSyntax := write("syntax.toml", "[log]\nlevel = = 1\n")
	envOf := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		path    string
		env     map[string]string
		want    func(c *Config)
		wantErr string // exact Error()
	}{
		{"no file no env", "", nil, func(c *Config) {}, ""},
		{"file", good, nil, func(c *Config) {
			c.Telegram.APIID, c.Telegram.APIHash, c.Control.Socket = 1, "filehash", "/file.sock"
		}, ""},
		{"env overrides file", good, map[string]string{EnvAPIID: "77", EnvAPIHash: "envhash", EnvSocket: "/env.sock", EnvState: "/env.db"}, func(c *Config) {
			c.Telegram.APIID, c.Telegram.APIHash, c.Control.Socket, c.State.Path = 77, "envhash", "/env.sock", "/env.db"
		}, ""},
		{"empty env values are unset", good, map[string]string{EnvAPIID: "", EnvSocket: ""}, func(c *Config) {
			c.Telegram.APIID, c.Telegram.APIHash, c.Control.Socket = 1, "filehash", "/file.sock"
		}, ""},
		{"env without file", "", map[string]string{EnvAPIID: "5", EnvAPIHash: "h"}, func(c *Config) {
			c.Telegram.APIID, c.Telegram.APIHash = 5, "h"
		}, ""},
		{"CALLD_CONFIG is not read by Load", "", map[string]string{EnvConfig: badSyntax}, func(c *Config) {}, ""},
		{"env api id not a number", good, map[string]string{EnvAPIID: "12x"}, nil, `CALLD_API_ID: not an integer: "12x"`},
		{"env value invalid", good, map[string]string{EnvAPIHash: "a b"}, nil, "telegram.api_hash: must not contain spaces or control characters (from $CALLD_API_HASH)"},
		{"env socket too long", "", map[string]string{EnvSocket: "/" + strings.Repeat("x", 200)}, nil, "control.socket: path is 201 bytes, longer than a Unix socket address can hold (107) (from $CALLD_SOCKET)"},
		{"file value invalid", badLevel, nil, nil, badLevel + `:5: log.level: "loud" is not one of debug, info, warn, error`},
		{"syntax error", badSyntax, nil, nil, badSyntax + ":2: log.level: expected value but found '=' instead"},
		{"missing file", filepath.Join(dir, "missing.toml"), nil, nil, filepath.Join(dir, "missing.toml") + ": cannot read: no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var env func(string) string
			if tc.env != nil {
				env = envOf(tc.env)
			}
			got, err := Load(tc.path, env)
			if tc.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("want *Error, got %T %v", err, err)
				}
				if err.Error() != tc.wantErr {
					t.Fatalf("got  %q\nwant %q", err.Error(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadMissingFileUnwraps(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("errors.Is(err, os.ErrNotExist) = false for %v", err)
	}
}

func TestPath(t *testing.T) {
	env := func(k string) string {
		if k == EnvConfig {
			return "/from/env.toml"
		}
		return ""
	}
	tests := []struct {
		flag string
		env  func(string) string
		want string
	}{
		{"/flag.toml", env, "/flag.toml"},
		{"", env, "/from/env.toml"},
		{"", nil, ""},
		{"", func(string) string { return "" }, ""},
	}
	for _, tc := range tests {
		if got := Path(tc.flag, tc.env); got != tc.want {
			t.Errorf("Path(%q) = %q, want %q", tc.flag, got, tc.want)
		}
	}
}

func TestLineIndex(t *testing.T) {
	src := `# comment
[telegram]
api_id = 1
"quoted key" = 2
'lit.key' = 3
nested . dotted = 4
s = """
fake = 1
"""
after = 5
[[telegram.dc_options]]
id = 1
[[telegram.dc_options]]
id = 2
[telegram.dc_options.sub]
x = 1
[ log ]
level = "x"
arr = [
  1,
]
`
	x := indexLines(src)
	tests := []struct {
		key  string
		line int
	}{
		{"telegram", 2},
		{"telegram.api_id", 3},
		{`telegram."quoted key"`, 4},
		{`telegram."lit.key"`, 5},
		{"telegram.nested.dotted", 6},
		{"telegram.s", 7},
		{"telegram.fake", 0}, // inside a multi-line string
		{"fake", 0},
		{"telegram.after", 10},
		{"telegram.dc_options", 11},
		{"telegram.dc_options[0].id", 12},
		{"telegram.dc_options[1].id", 14},
		{"telegram.dc_options[1].sub.x", 16},
		{"log.level", 18},
		{"log.arr[0]", 19},          // inside an inline value: its key's line
		{"telegram.api_hash", 0},    // absent, parent is a header
		{"telegram.api_id.deep", 3}, // below a value
	}
	for _, tc := range tests {
		if got := x.lineOf(tc.key); got != tc.line {
			t.Errorf("lineOf(%s) = %d, want %d", tc.key, got, tc.line)
		}
	}
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		in   string
		want FileMode
		ok   bool
	}{
		{"0660", 0o660, true}, {"660", 0o660, true}, {"0o600", 0o600, true}, {"0", 0, true},
		{"0777", 0o777, true}, {"1000", 0, false}, {"8", 0, false}, {"", 0, false}, {"-1", 0, false}, {"0o", 0, false},
	}
	for _, tc := range tests {
		var m FileMode
		err := m.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && m != tc.want) {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v ok=%v", tc.in, m, err, tc.want, tc.ok)
		}
	}
	if got := FileMode(0o660).String(); got != "0660" {
		t.Errorf("String() = %q", got)
	}
	if got := FileMode(0).String(); got != "0000" {
		t.Errorf("String() = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readExample(f))
	for _, s := range []string{
		"", "[telegram]\napi_id = 1\n", "[[telegram.dc_options]]\nid = 2\naddr = \"a:1\"\n",
		"log = {level = \"x\"}", "[control]\nallow_uids = [1, \"a\"]\n", "a.b.c = 1\n[a]\n",
		"[policy]\nmax_duration = \"1h\"\n", "s = '''\nx\n'''\n", "[telegram.dc_options.x]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.toml")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			if e.Error() == "" || e.File != "fuzz.toml" {
				t.Fatalf("bad error %#v", e)
			}
			return
		}
		if err := cfg.Validate(true); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}

// TestAccountName: what [telegram] account and --account accept (a name
// usable as a file name, a systemd instance and a metric label) and what
// they refuse, with a message saying what is accepted.
func TestAccountName(t *testing.T) {
	// The log schema describes the account field with a pattern: the
	// same names.
	data, err := os.ReadFile("../../docs/log.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct{ Pattern string }
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	pattern := regexp.MustCompile(schema.Properties["account"].Pattern)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"Support-2", true},
		{"team_b", true},
		{"0", true},
		{strings.Repeat("a", MaxAccountLen), true},
		{"", false},
		{strings.Repeat("a", MaxAccountLen+1), false},
		{"a/b", false},
		{"..", false},
		{".hidden", false},
		{"a.b", false},
		{"-x", false},
		{"_x", false},
		{"a b", false},
		{"a@b", false},
		{"a\\x2d", false},
		{"é", false},
		{"a\x00", false},
	} {
		err := CheckAccount(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAccount(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if pattern.MatchString(tc.name) != tc.ok {
			t.Errorf("docs/log.schema.json's account pattern %s on %q: want %v", pattern, tc.name, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "letters, digits") {
			t.Errorf("CheckAccount(%q) = %q: does not say what is accepted", tc.name, err)
		}
	}
	// Unset is fine in the file: the account is optional.
	cfg, err := Parse([]byte("[telegram]\naccount = \"alice\"\n"), "t.toml")
	if err != nil || cfg.Telegram.Account != "alice" {
		t.Errorf("Parse account = alice: %+v, %v", cfg.Telegram, err)
	}
	if cfg, err := Parse(nil, "t.toml"); err != nil || cfg.Telegram.Account != "" {
		t.Errorf("Parse without account: %q, %v", cfg.Telegram.Account, err)
	}
}
