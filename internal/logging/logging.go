// Package logging owns calld's log schema and output (CONTRACT §4): the
// event names and field keys (events.go, documented in docs/logging.md),
// and the zerolog.Logger the daemon writes them with.
//
// Lines go to standard error, one JSON object per line (or human console
// lines on a terminal). Every line has time (RFC 3339 UTC with
// microseconds), level, event and message: the writer stamps the time
// itself (do not call zerolog's Timestamp()) and fills in a missing level,
// event or message. Under systemd, when standard error is the journal, each
// line starts with its syslog priority (<3> error ... <7> debug), which
// journald strips and applies, so `journalctl -p warning` works. The level
// can be changed at run time (SIGHUP) through the *Level handle New
// returns, without rebuilding loggers.
package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/gotd/td/clock"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Formats accepted by Options.Format.
const (
	formatJSON    = "json"
	formatConsole = "console"
	formatAuto    = "auto" // console when Out is a terminal, JSON otherwise
)

// timeLayout is the layout of the time field: RFC 3339, UTC, always with
// six fractional digits.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Options configure New. The zero value logs JSON at info to os.Stderr.
type Options struct {
	Level  string    // debug, info, warn, error; "" means info
	Format string    // json, console or auto; "" means auto
	Out    io.Writer // default os.Stderr
	// IsTTY reports whether Out is a terminal (for auto); default: Out is
	// an *os.File on a terminal.
	IsTTY func() bool
	// JournalStream reports whether Out is connected to journald (then
	// lines get a syslog priority prefix); default: Out is os.Stderr or
	// os.Stdout and $JOURNAL_STREAM names it (go-systemd journal).
	JournalStream func() bool
	// Clock stamps the time field: the program's one clock (gotd's
	// clock.Clock, as the manager's); default clock.System.
	Clock clock.Clock
	// Account, when not "", is written as FieldAccount on every line
	// (by the writer: lines of every logger built on this one, gotd's
	// bridged lines and text written to it directly).
	Account string
	// Batch, when set, is tied to the logger's writer: Batch.Hold
	// gathers the lines written meanwhile into one Write.
	Batch *Batch
}

// Batch lets a caller that is about to write many lines at once (the
// manager running a commit's effects) have them written with one Write
// (one system call) instead of one each. The zero Batch, or one not given
// to New, holds nothing.
type Batch struct {
	w atomic.Pointer[writer]
}

// Hold makes the writer keep every line, of any logger on it and from any
// goroutine, in order, until the returned release is called; release
// (which acts once) writes what was kept in one Write. Holds nest: lines
// are written when the last one is released. At most maxHeld bytes are kept: beyond that
// they are written at once. A process killed while lines are held loses
// them: hold only around work that does not wait (the effects of a
// commit are logs and hand-offs). A nil Batch holds nothing.
func (b *Batch) Hold() (release func()) {
	if b == nil {
		return func() {}
	}
	w := b.w.Load()
	if w == nil {
		return func() {}
	}
	w.mu.Lock()
	w.held++
	w.mu.Unlock()
	released := false
	return func() {
		if !released {
			released = true
			w.release()
		}
	}
}

// maxHeld bounds the bytes a held writer keeps.
const maxHeld = 64 << 10

var globalsOnce sync.Once

// setGlobals sets the zerolog globals calld relies on, once per process:
// TimeFieldFormat = time.RFC3339Nano (for .Time fields), ErrorFieldName =
// "err" (so .Err(err) writes FieldErr) and DurationFieldUnit = time.Second
// (so .Dur writes float seconds). New calls it.
func setGlobals() {
	globalsOnce.Do(func() {
		zerolog.TimeFieldFormat = time.RFC3339Nano
		zerolog.ErrorFieldName = FieldErr
		zerolog.DurationFieldUnit = time.Second
	})
}

// New builds the daemon's logger and returns it with the handle that
// changes its level at run time. Child loggers (With()...) share the level.
func New(o Options) (zerolog.Logger, *Level, error) {
	setGlobals()
	lvl := &Level{}
	name := o.Level
	if name == "" {
		name = "info"
	}
	if err := lvl.Set(name); err != nil {
		return zerolog.Nop(), nil, err
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if o.Clock == nil {
		o.Clock = clock.System
	}
	if o.IsTTY == nil {
		o.IsTTY = func() bool { return isTerminal(o.Out) }
	}
	if o.JournalStream == nil {
		o.JournalStream = func() bool { return isJournal(o.Out) }
	}
	w := &writer{out: o.Out, level: lvl, clock: o.Clock, journal: o.JournalStream()}
	if o.Batch != nil {
		o.Batch.w.Store(w)
	}
	if o.Account != "" {
		name, _ := json.Marshal(o.Account)
		w.account = append([]byte(`,"`+FieldAccount+`":`), name...)
	}
	switch o.Format {
	case formatJSON:
	case formatConsole:
		w.console = newConsole(&w.conv, !o.IsTTY())
	case formatAuto, "":
		if o.IsTTY() {
			w.console = newConsole(&w.conv, false)
		}
	default:
		return zerolog.Nop(), nil, fmt.Errorf("log format %q is not one of json, console, auto", o.Format)
	}
	l := zerolog.New(w).Level(zerolog.TraceLevel).Sample(levelSampler{lvl})
	return l, lvl, nil
}

func newConsole(out io.Writer, noColor bool) *zerolog.ConsoleWriter {
	return &zerolog.ConsoleWriter{
		Out:           out,
		NoColor:       noColor,
		TimeFormat:    "2006-01-02 15:04:05.000",
		TimeLocation:  time.UTC,
		PartsOrder:    []string{FieldTime, FieldLevel, FieldEvent, FieldMessage},
		FieldsExclude: []string{FieldEvent},
	}
}

// Level is a log level that can change while loggers use it (an atomic
// value). The zero value is debug.
type Level struct {
	v atomic.Int32
}

// parseLevel accepts debug, info, warn and error.
func parseLevel(name string) (zerolog.Level, error) {
	switch name {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("log level %q is not one of debug, info, warn, error", name)
}

// Set changes the level by name (debug, info, warn, error).
func (l *Level) Set(name string) error {
	v, err := parseLevel(name)
	if err != nil {
		return err
	}
	l.v.Store(int32(v))
	return nil
}

func (l *Level) get() zerolog.Level { return zerolog.Level(l.v.Load()) }

// String returns the current level's name.
func (l *Level) String() string { return l.get().String() }

// Enabled reports whether lines at v are written. Code that builds costly
// fields (or bridges another logger, like gotd's zap) can ask first.
func (l *Level) Enabled(v zerolog.Level) bool { return v >= l.get() || v == zerolog.NoLevel }

// levelSampler drops disabled lines before zerolog builds them.
type levelSampler struct{ l *Level }

func (s levelSampler) Sample(v zerolog.Level) bool { return s.l.Enabled(v) }

// writer turns zerolog's JSON lines into calld's: it filters by level
// (again: a caller may replace the sampler), stamps time, fills in missing
// required fields, redacts secrets, converts to console text if asked,
// adds the journald priority and writes each line with a single Write
// (several lines with one while a Batch holds them).
type writer struct {
	out     io.Writer
	level   *Level
	clock   clock.Clock
	journal bool
	console *zerolog.ConsoleWriter
	account []byte // `,"account":"NAME"`, or nil

	mu   sync.Mutex
	line bytes.Buffer // the JSON line being built
	conv bytes.Buffer // console output
	buf  bytes.Buffer // what goes to out
	held int          // Batch.Hold calls not yet released
	kept bytes.Buffer // lines written while held
}

// release ends one Batch.Hold (each once): the last one writes what was
// kept.
func (w *writer) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held--
	if w.held == 0 && w.kept.Len() > 0 {
		_, _ = w.out.Write(w.kept.Bytes())
		w.kept.Reset()
	}
}

func (w *writer) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.NoLevel, p) }

func (w *writer) WriteLevel(v zerolog.Level, p []byte) (int, error) {
	if !w.level.Enabled(v) {
		return len(p), nil
	}
	var tsBuf [len(timeLayout)]byte
	ts := appendTime(tsBuf[:0], w.clock.Now().UTC())
	w.mu.Lock()
	defer w.mu.Unlock()
	w.line.Reset()
	completeLine(&w.line, p, v, ts, w.account)
	line := w.line.Bytes()
	if hasSecret(line) {
		line = redact(line)
	}
	w.buf.Reset()
	if w.journal {
		w.buf.WriteString(priority(v))
	}
	if w.console != nil {
		w.conv.Reset()
		if _, err := w.console.Write(line); err != nil {
			w.buf.Write(line) // not JSON after all: write it as it is
		} else {
			w.buf.Write(w.conv.Bytes())
		}
	} else {
		w.buf.Write(line)
	}
	if w.held > 0 {
		w.kept.Write(w.buf.Bytes())
		if w.kept.Len() < maxHeld {
			return len(p), nil
		}
		_, err := w.out.Write(w.kept.Bytes())
		w.kept.Reset()
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if _, err := w.out.Write(w.buf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// completeLine writes p, a zerolog JSON object, to b with time first and
// level, event and message added when missing, then account (the member
// `,"account":"NAME"`, when not nil and p has none); it ends with a
// newline.
func completeLine(b *bytes.Buffer, p []byte, v zerolog.Level, ts, account []byte) {
	body := bytes.TrimSpace(p)
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		// Not a JSON object (a caller wrote to the writer directly):
		// wrap it as the message.
		msg, _ := json.Marshal(string(body))
		body = append(append([]byte(`{"message":`), msg...), '}')
	}
	inner := bytes.TrimSpace(body[1 : len(body)-1])
	b.WriteString(`{"time":"`)
	b.Write(ts)
	b.WriteByte('"')
	if !hasKey(inner, FieldLevel) {
		lv := v
		if lv == zerolog.NoLevel {
			lv = zerolog.InfoLevel
		}
		b.WriteString(`,"level":"`)
		b.WriteString(lv.String())
		b.WriteByte('"')
	}
	if len(inner) > 0 {
		b.WriteByte(',')
		b.Write(inner)
	}
	if !hasKey(inner, FieldEvent) {
		b.WriteString(`,"event":"` + EventLog + `"`)
	}
	if !hasKey(inner, FieldMessage) {
		b.WriteString(`,"message":""`)
	}
	if account != nil && !hasKey(inner, FieldAccount) {
		b.Write(account)
	}
	b.WriteString("}\n")
}

// hasKey reports whether the JSON text has a member named key. Quotes
// inside string values are escaped, so `"key":` only matches a member name
// (of this object or a nested one).
func hasKey(js []byte, key string) bool {
	return bytes.Contains(js, []byte(`"`+key+`":`))
}

// hasSecret reports whether line has a member named after one of
// secretFields (as hasKey would for each, in one pass: at every `":` the
// name is what follows the quote before it; quotes inside string values
// are escaped, so this finds every member name and perhaps a few
// fragments of values, never misses one).
func hasSecret(line []byte) bool {
	for i := 0; ; {
		j := bytes.Index(line[i:], []byte(`":`))
		if j < 0 {
			return false
		}
		end := i + j
		if start := bytes.LastIndexByte(line[:end], '"'); start >= 0 && secretSet[string(line[start+1:end])] {
			return true
		}
		i = end + 2
	}
}

// redact rewrites a line that carries a secret field. It is the rare,
// slow path: decode, replace, re-encode (member order becomes sorted).
func redact(line []byte) []byte {
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return line
	}
	redactMap(m)
	out, err := json.Marshal(m)
	if err != nil {
		return line
	}
	return append(out, '\n')
}

func redactMap(m map[string]any) {
	for k, v := range m {
		if secretSet[k] {
			m[k] = "[redacted]"
		}
		if sub, ok := v.(map[string]any); ok {
			redactMap(sub)
		}
	}
}

// priority is the sd-daemon(3) prefix journald reads for a level.
func priority(v zerolog.Level) string {
	switch v {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return "<7>"
	case zerolog.WarnLevel:
		return "<4>"
	case zerolog.ErrorLevel:
		return "<3>"
	case zerolog.FatalLevel, zerolog.PanicLevel:
		return "<2>"
	default: // info and no level
		return "<6>"
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func isJournal(w io.Writer) bool {
	var ok bool
	var err error
	switch w {
	case os.Stderr:
		ok, err = journal.StderrIsJournalStream()
	case os.Stdout:
		ok, err = journal.StdoutIsJournalStream()
	}
	return ok && err == nil
}

// MaskPhone hides a phone number for logs (CONTRACT §4: phone numbers
// masked; the only masking calld uses). It keeps a leading "+" and the
// digits, drops every other character, and replaces digits by '*' except
// the last two of a number of eight digits or more and the first four of
// one of ten or more: MaskPhone("+15551234567") == "+1555*****67",
// MaskPhone("1234567") == "*******".
func MaskPhone(phone string) string {
	var b strings.Builder
	if strings.HasPrefix(phone, "+") {
		b.WriteByte('+')
	}
	n := 0
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	head, tail := 0, 0
	if n >= 8 {
		tail = 2
	}
	if n >= 10 {
		head = 4
	}
	i := 0
	for _, r := range phone {
		if r < '0' || r > '9' {
			continue
		}
		if i >= head && i < n-tail {
			r = '*'
		}
		b.WriteRune(r)
		i++
	}
	return b.String()
}

// appendTime appends t, which is in UTC, as t.AppendFormat(b, timeLayout)
// does (2006-01-02T15:04:05.000000Z), written directly: every line has
// one, and the layout's general formatter was 2 % of calld's CPU in a
// 5,000-call burst. Years outside 0..9999 go to AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits appends v (0 <= v < 10^n) as n decimal digits.
func appendDigits(b []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
