package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/neo"
	"github.com/rs/zerolog"
)

var fixed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.SplitAfter(s.b.String(), "\n")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func newTest(t *testing.T, o Options) (zerolog.Logger, *Level, *syncBuf) {
	t.Helper()
	buf := &syncBuf{}
	o.Out = buf
	if o.IsTTY == nil {
		o.IsTTY = func() bool { return false }
	}
	if o.JournalStream == nil {
		o.JournalStream = func() bool { return false }
	}
	if o.Clock == nil {
		o.Clock = neo.NewTime(fixed)
	}
	l, lvl, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return l, lvl, buf
}

func decodeLine(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not one JSON object: %q: %v", line, err)
	}
	return m
}

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestJSONLines(t *testing.T) {
	log, _, buf := newTest(t, Options{Format: formatJSON})
	tests := []struct {
		name  string
		write func()
		want  map[string]any // exact members
	}{
		{"full line", func() {
			log.Info().Str(FieldEvent, EventDaemonReady).Str(FieldSocket, "/run/calld.sock").Msg("ready")
		}, map[string]any{"level": "info", "event": "daemon.ready", "socket": "/run/calld.sock", "message": "ready"}},
		{"no event", func() { log.Warn().Msg("careful") },
			map[string]any{"level": "warn", "event": "log", "message": "careful"}},
		{"no message", func() { log.Error().Str(FieldEvent, EventStoreError).Err(errors.New("disk")).Send() },
			map[string]any{"level": "error", "event": "store.error", "err": "disk", "message": ""}},
		{"no level", func() { log.Log().Str(FieldEvent, EventCallEnded).Msg("x") },
			map[string]any{"level": "info", "event": "call.ended", "message": "x"}},
		{"empty", func() { log.Info().Send() },
			map[string]any{"level": "info", "event": "log", "message": ""}},
		{"message with quotes is not a key", func() { log.Info().Str("note", `"event":`).Msg(`"message":`) },
			map[string]any{"level": "info", "event": "log", "note": `"event":`, "message": `"message":`}},
		{"durations in seconds", func() { log.Info().Dur(FieldWait, 1500*time.Millisecond).Msg("w") },
			map[string]any{"level": "info", "event": "log", "wait": 1.5, "message": "w"}},
		{"raw write", func() { fmt.Fprint(log, "plain text") },
			map[string]any{"level": "info", "event": "log", "message": "plain text"}},
		{"call fields", func() {
			log.Info().Str(FieldCallID, "-9223372036854775808").Str(FieldDirection, "incoming").
				Str(FieldPeerID, "42").Bool(FieldVideo, true).
				Str(FieldEvent, EventCallState).Str(FieldFrom, "ringing").Str(FieldTo, "ended").Msg("state")
		}, map[string]any{"level": "info", "event": "call.state", "call_id": "-9223372036854775808", "direction": "incoming",
			"peer_id": "42", "video": true, "from": "ringing", "to": "ended", "message": "state"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(buf.lines())
			tc.write()
			lines := buf.lines()
			if len(lines) != before+1 {
				t.Fatalf("want one new line, got %d", len(lines)-before)
			}
			line := lines[len(lines)-1]
			if !strings.HasPrefix(line, `{"time":"2026-01-02T03:04:05.000000Z",`) {
				t.Fatalf("time is not first or not fractional: %q", line)
			}
			m := decodeLine(t, line)
			if !timeRE.MatchString(m["time"].(string)) {
				t.Fatalf("time %q", m["time"])
			}
			delete(m, "time")
			if fmt.Sprint(m) != fmt.Sprint(tc.want) {
				t.Fatalf("\n got %v\nwant %v", m, tc.want)
			}
		})
	}
}

func TestTimeIsUTCWithMicroseconds(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3*3600))
	clk := neo.NewTime(at)
	log, _, buf := newTest(t, Options{Format: formatJSON, Clock: clk})
	log.Info().Msg("x")
	clk.Travel(1500 * time.Millisecond) // every line reads the clock
	log.Info().Msg("y")
	for i, want := range []string{"2026-05-06T04:08:09.123456Z", "2026-05-06T04:08:10.623456Z"} {
		if m := decodeLine(t, buf.lines()[i]); m["time"] != want {
			t.Fatalf("line %d: time = %v, want %s", i, m["time"], want)
		}
	}
}

func TestJournalPriority(t *testing.T) {
	log, _, buf := newTest(t, Options{Level: "debug", Format: formatJSON, JournalStream: func() bool { return true }})
	tests := []struct {
		write  func()
		prefix string
	}{
		{func() { log.Debug().Msg("d") }, "<7>{"},
		{func() { log.Info().Msg("i") }, "<6>{"},
		{func() { log.Warn().Msg("w") }, "<4>{"},
		{func() { log.Error().Msg("e") }, "<3>{"},
		{func() { log.WithLevel(zerolog.FatalLevel).Msg("f") }, "<2>{"},
		{func() { log.Log().Msg("n") }, "<6>{"},
	}
	for i, tc := range tests {
		tc.write()
		line := buf.lines()[i]
		if !strings.HasPrefix(line, tc.prefix) {
			t.Errorf("line %d = %q, want prefix %q", i, line, tc.prefix)
		}
		decodeLine(t, line[3:])
	}
}

func TestNoPriorityOffJournal(t *testing.T) {
	log, _, buf := newTest(t, Options{Format: formatJSON})
	log.Error().Msg("e")
	if !strings.HasPrefix(buf.lines()[0], "{") {
		t.Fatalf("line = %q", buf.lines()[0])
	}
}

func TestLevelReload(t *testing.T) {
	log, lvl, buf := newTest(t, Options{Level: "info", Format: formatJSON})
	child := log.With().Str(FieldComponent, "mtproto").Logger() // made before the change
	sampled := log.Sample(&zerolog.BasicSampler{N: 1})          // sampler replaced: the writer still filters
	steps := []struct {
		set   string
		write func()
		want  bool
	}{
		{"", func() { log.Debug().Msg("a") }, false},
		{"", func() { child.Info().Msg("b") }, true},
		{"debug", func() { log.Debug().Msg("c") }, true},
		{"", func() { child.Debug().Msg("d") }, true},
		{"error", func() { child.Warn().Msg("e") }, false},
		{"", func() { sampled.Warn().Msg("f") }, false},
		{"", func() { log.Error().Msg("g") }, true},
		{"warn", func() { sampled.Info().Msg("h") }, false},
		{"", func() { sampled.Warn().Msg("i") }, true},
	}
	for i, s := range steps {
		if s.set != "" {
			if err := lvl.Set(s.set); err != nil {
				t.Fatal(err)
			}
		}
		before := len(buf.lines())
		s.write()
		if got := len(buf.lines()) > before; got != s.want {
			t.Fatalf("step %d (level %s): written=%v, want %v", i, lvl, got, s.want)
		}
	}
	if err := lvl.Set("loud"); err == nil {
		t.Fatal("Set(loud) accepted")
	}
	if lvl.String() != "warn" {
		t.Fatalf("a rejected Set changed the level to %s", lvl)
	}
	if !lvl.Enabled(zerolog.ErrorLevel) || lvl.Enabled(zerolog.InfoLevel) {
		t.Fatal("Enabled disagrees with the level")
	}
}

func TestFormats(t *testing.T) {
	tests := []struct {
		format string
		tty    bool
		json   bool
	}{
		{formatJSON, true, true},
		{formatJSON, false, true},
		{formatConsole, false, false},
		{formatAuto, true, false},
		{formatAuto, false, true},
		{"", false, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s-tty=%v", tc.format, tc.tty), func(t *testing.T) {
			tty := tc.tty
			log, _, buf := newTest(t, Options{Format: tc.format, IsTTY: func() bool { return tty }})
			log.Info().Str(FieldEvent, EventCallEnded).Str(FieldCallID, "5").Msg("call ended")
			line := buf.lines()[0]
			if isJSON := json.Valid([]byte(line)); isJSON != tc.json {
				t.Fatalf("JSON=%v, want %v: %q", isJSON, tc.json, line)
			}
			if !tc.json {
				for _, want := range []string{"2026-01-02 03:04:05.000", "INF", "call.ended", "call ended", "call_id="} {
					if !strings.Contains(line, want) {
						t.Fatalf("console line %q lacks %q", line, want)
					}
				}
				if strings.Count(line, "call.ended") != 1 {
					t.Fatalf("event printed twice: %q", line)
				}
			}
		})
	}
}

func TestConsoleOnJournalHasPriority(t *testing.T) {
	log, _, buf := newTest(t, Options{Format: formatConsole, JournalStream: func() bool { return true }})
	log.Warn().Msg("w")
	if line := buf.lines()[0]; !strings.HasPrefix(line, "<4>2026-01-02") || strings.Count(line, "\n") != 1 {
		t.Fatalf("line = %q", line)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Level: "verbose"}, {Level: "INFO"}, {Format: "xml"}} {
		if _, _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	log, _, buf := newTest(t, Options{Format: formatJSON})
	log.Info().Str(FieldEvent, EventMTProtoLogin).Str("api_hash", "s3cr3t-hash").
		Dict("nested", zerolog.Dict().Str("password", "hunter2").Int("n", 1)).
		Str("login_code", "12345").Str(FieldCode, "not_found").Int64("big", 9007199254740993).Msg("login")
	line := buf.lines()[0]
	for _, secret := range []string{"s3cr3t-hash", "hunter2", "12345"} {
		if strings.Contains(line, secret) {
			t.Fatalf("secret %q reached the log: %s", secret, line)
		}
	}
	m := decodeLine(t, line)
	if m["api_hash"] != "[redacted]" || m["nested"].(map[string]any)["password"] != "[redacted]" || m["event"] != EventMTProtoLogin || m["code"] != "not_found" {
		t.Fatalf("line = %s", line)
	}
	if !strings.Contains(line, `"big":9007199254740993`) {
		t.Fatalf("redaction lost integer precision: %s", line)
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	log, lvl, buf := newTest(t, Options{Format: formatJSON, JournalStream: func() bool { return true }})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				log.Info().Int("g", g).Int("i", i).Str(FieldEvent, EventCallState).Msg("x")
				if i%50 == 0 {
					_ = lvl.Set("info") // concurrent reloads
				}
			}
		}(g)
	}
	wg.Wait()
	lines := buf.lines()
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		decodeLine(t, strings.TrimPrefix(l, "<6>"))
	}
}

// The masking of phone numbers (CONTRACT §4: phone numbers masked): only
// digits and a leading "+" are kept, and a number shows at most its first
// four and last two digits.
func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+15551234567", "+1555*****67"},
		{"15551234567", "1555*****67"},
		{"+44 20 7946 0958", "+4420******58"},
		{"+1 (555) 123-4567", "+1555*****67"},
		{"9996621234", "9996****34"},
		{"123456789", "*******89"},
		{"+12345678", "+******78"},
		{"1234567", "*******"},
		{"12345", "*****"},
		{"+1234", "+****"},
		{"1234", "****"},
		{"12", "**"},
		{"", ""},
		{"@username", ""},
		{"1+5551234567", "1555*****67"},
		{"+1555123456 7 secret", "+1555*****67"},
	}
	for _, tc := range tests {
		if got := MaskPhone(tc.in); got != tc.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDefaultJournalDetection(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  string
		want bool
	}{
		{"", false},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"garbage", false},
	}
	for _, tc := range tests {
		t.Setenv("JOURNAL_STREAM", tc.env)
		if got := isJournal(os.Stderr); got != tc.want {
			t.Errorf("JOURNAL_STREAM=%q: isJournal(stderr) = %v", tc.env, got)
		}
		if isJournal(&bytes.Buffer{}) {
			t.Errorf("a buffer is never the journal")
		}
	}
}

// schema reads events.go's constants.
func schema(t *testing.T) (events, fields map[string]string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	events, fields = map[string]string{}, map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				v, err := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case strings.HasPrefix(n.Name, "Event"):
					events[n.Name] = v
				case strings.HasPrefix(n.Name, "Field"):
					fields[n.Name] = v
				default:
					t.Errorf("constant %s is neither Event nor Field", n.Name)
				}
			}
		}
	}
	return events, fields
}

func TestSchema(t *testing.T) {
	events, fields := schema(t)
	// CONTRACT §4, exactly.
	contract := map[string]string{
		"EventDaemonReady": "daemon.ready", "EventDaemonStopping": "daemon.stopping",
		"EventTelegramConnected": "telegram.connected", "EventTelegramDisconnected": "telegram.disconnected",
		"EventCallState": "call.state", "EventCallDiscard": "call.discard", "EventCallEnded": "call.ended",
		"EventUpdatesGap": "updates.gap", "EventUpdatesDifference": "updates.difference",
		"FieldLevel": "level", "FieldTime": "time", "FieldEvent": "event", "FieldMessage": "message",
		"FieldSocket": "socket", "FieldStatePath": "state_path", "FieldSignal": "signal", "FieldDC": "dc", "FieldErr": "err",
		"FieldCallID": "call_id", "FieldFrom": "from", "FieldTo": "to", "FieldDirection": "direction", "FieldPeerID": "peer_id",
		"FieldReason": "reason", "FieldDuration": "duration", "FieldConnectionID": "connection_id", "FieldVideo": "video",
		"FieldResult": "result", "FieldEndedBy": "ended_by", "FieldBox": "box", "FieldLocal": "local", "FieldRemote": "remote",
		"FieldFromPts": "from_pts", "FieldToPts": "to_pts", "FieldSeq": "seq", "FieldUpdates": "updates",
	}
	for name, want := range contract {
		got, ok := events[name]
		if !ok {
			got, ok = fields[name]
		}
		if !ok || got != want {
			t.Errorf("%s = %q, want %q (CONTRACT §4)", name, got, want)
		}
	}
	eventRE := regexp.MustCompile(`^[a-z]+(\.[a-z_]+)?$`)
	fieldRE := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	check := func(kind string, m map[string]string, re *regexp.Regexp) {
		seen := map[string]string{}
		for name, v := range m {
			if !re.MatchString(v) {
				t.Errorf("%s %s = %q has a bad shape", kind, name, v)
			}
			if other, dup := seen[v]; dup {
				t.Errorf("%s and %s are both %q", name, other, v)
			}
			seen[v] = name
		}
	}
	check("event", events, eventRE)
	check("field", fields, fieldRE)
	for name, v := range fields {
		for _, s := range secretFields {
			if v == s {
				t.Errorf("%s = %q is a secret field", name, v)
			}
		}
	}
}

// docs/logging.md documents every event and field.
func TestDocsListSchema(t *testing.T) {
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	events, fields := schema(t)
	for _, m := range []map[string]string{events, fields} {
		for name, v := range m {
			if !bytes.Contains(doc, []byte("`"+v+"`")) {
				t.Errorf("docs/logging.md does not mention `%s` (%s)", v, name)
			}
		}
	}
	// Its example lines are what the logger writes: valid JSON with the
	// required members and a known event.
	known := map[string]bool{}
	for _, v := range events {
		known[v] = true
	}
	n := 0
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, `{"time":`) {
			continue
		}
		n++
		m := decodeLine(t, line)
		for _, k := range []string{FieldTime, FieldLevel, FieldEvent, FieldMessage} {
			if _, ok := m[k]; !ok {
				t.Errorf("example lacks %s: %s", k, line)
			}
		}
		if !known[fmt.Sprint(m[FieldEvent])] || !timeRE.MatchString(fmt.Sprint(m[FieldTime])) {
			t.Errorf("example has an unknown event or a bad time: %s", line)
		}
	}
	if n < 9 {
		t.Errorf("only %d example lines in docs/logging.md", n)
	}
}

func BenchmarkLine(b *testing.B) {
	for _, bc := range []struct {
		name  string
		level string
		debug bool
	}{{"info-written", "info", false}, {"debug-dropped", "info", true}} {
		b.Run(bc.name, func(b *testing.B) {
			log, _, err := New(Options{Level: bc.level, Format: formatJSON, Out: io.Discard,
				IsTTY: func() bool { return false }, JournalStream: func() bool { return true }})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var e *zerolog.Event
				if bc.debug {
					e = log.Debug()
				} else {
					e = log.Info()
				}
				e.Str(FieldCallID, "6180340223140218862").Str(FieldDirection, "incoming").Str(FieldPeerID, "424242").
					Bool(FieldVideo, false).Str(FieldEvent, EventCallState).Str(FieldFrom, "ringing").Str(FieldTo, "active").Msg("call state")
			}
		})
	}
}

// TestAccountOnEveryLine: with Options.Account every line carries it
// (lines of child loggers, a line a bridged logger writes to the root
// one, a line written to the writer directly, a redacted line, console
// lines); without it no line has the field.
func TestAccountOnEveryLine(t *testing.T) {
	for _, tc := range []struct {
		account string
		format  string
	}{{"alice", formatJSON}, {"", formatJSON}, {"alice", formatConsole}} {
		log, _, buf := newTest(t, Options{Format: tc.format, Account: tc.account})
		log.Info().Str(FieldEvent, EventDaemonReady).Msg("ready")
		child := log.With().Str(FieldComponent, "mtproto").Logger()
		child.Warn().Str(FieldEvent, EventMTProtoGotd).Msg("from gotd")
		log.Info().Str("password", "hunter2").Msg("secret")
		_, _ = log.Write([]byte("plain text\n"))
		lines := buf.lines()
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4: %q", len(lines), lines)
		}
		for _, l := range lines {
			if tc.format == formatConsole {
				if has := strings.Contains(l, "account=alice"); !has {
					t.Errorf("console line without account=alice: %q", l)
				}
				continue
			}
			m := decodeLine(t, l)
			got, has := m[FieldAccount]
			if tc.account == "" && has || tc.account != "" && got != tc.account {
				t.Errorf("account %q: line %q has account %v (%v)", tc.account, l, got, has)
			}
		}
	}
}

// FuzzHasSecret holds hasSecret's one pass equal to asking hasKey for
// every secret field, on any bytes.
func FuzzHasSecret(f *testing.F) {
	for _, s := range []string{
		`{"level":"info","event":"call.state","call_id":"1","message":"call state"}`,
		`{"level":"info","auth_key":"00ff","message":"x"}`,
		`{"a":{"g_a":"x"}}`, `{"message":"a \"key\": b"}`, `"":`, `"key":`, `key":`,
		`{"secret"   :1}`, `{"g_a_hash":"x","message":"\":"}`, `""":"token":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want := false
		for _, k := range secretFields {
			want = want || hasKey(line, k)
		}
		if got := hasSecret(line); got != want {
			t.Fatalf("hasSecret(%q) = %v, hasKey of a secret field: %v", line, got, want)
		}
	})
}

// writes records every Write it is given, whole.
type writes struct {
	mu sync.Mutex
	w  []string
}

func (r *writes) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w = append(r.w, string(p))
	return len(p), nil
}

func (r *writes) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.w...)
}

// TestBatchHold: lines written while a Batch holds (nested holds, another
// goroutine's lines) reach the output in order with one Write when the
// last hold is released, each release counting once; without a hold each
// line is a Write of its own; a nil Batch, or one not given to New, holds
// nothing; past maxHeld bytes the kept lines are written at once.
func TestBatchHold(t *testing.T) {
	out := &writes{}
	var batch Batch
	log, _, err := New(Options{Format: formatJSON, Out: out, IsTTY: func() bool { return false },
		JournalStream: func() bool { return false }, Batch: &batch})
	if err != nil {
		t.Fatal(err)
	}
	msgs := func(w string) []string {
		var got []string
		for _, line := range strings.SplitAfter(w, "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got = append(got, m[FieldMessage].(string))
		}
		return got
	}

	log.Info().Msg("before")
	outer := batch.Hold()
	log.Info().Msg("a")
	inner := batch.Hold()
	done := make(chan struct{})
	go func() {
		log.Warn().Msg("b")
		close(done)
	}()
	<-done
	inner()
	inner() // a second call of the same release changes nothing
	log.Info().Msg("c")
	if n := len(out.all()); n != 1 {
		t.Fatalf("%d writes while held, want 1 (the line before the hold)", n)
	}
	outer()
	log.Info().Msg("after")
	w := out.all()
	if len(w) != 3 {
		t.Fatalf("writes %q, want 3", w)
	}
	for i, want := range [][]string{{"before"}, {"a", "b", "c"}, {"after"}} {
		if got := msgs(w[i]); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("write %d has lines %q, want %q", i, got, want)
		}
	}

	// Past maxHeld the kept lines go out at once, still in order.
	release := batch.Hold()
	long := strings.Repeat("x", 1000)
	n := maxHeld/1000 + 10
	for i := 0; i < n; i++ {
		log.Info().Msg(long)
	}
	if got := len(out.all()); got != 4 {
		t.Fatalf("%d writes after %d held lines of 1 KB, want 4 (one at maxHeld)", got, n)
	}
	release()
	w = out.all()
	if len(w) != 5 || len(msgs(w[3]))+len(msgs(w[4])) != n {
		t.Fatalf("%d writes; the held lines were not all written", len(w))
	}

	// A nil Batch, and one New was not given, hold nothing.
	var none *Batch
	none.Hold()()
	var unused Batch
	free := unused.Hold()
	log.Info().Msg("free")
	free()
	if w := out.all(); len(w) != 6 || msgs(w[5])[0] != "free" {
		t.Fatalf("a line under an unused Batch's hold was not written at once: %d writes", len(w))
	}
}
