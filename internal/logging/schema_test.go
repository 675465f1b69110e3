package logging

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaPath is the JSON Schema of a log line, relative to this package.
const schemaPath = "../../docs/log.schema.json"

var update = flag.Bool("update", false, "rewrite docs/log.schema.json from docs/logging.md's tables")

// The shape of docs/log.schema.json, in the order it is written.
type (
	schemaDoc struct {
		Schema      string                `json:"$schema"`
		ID          string                `json:"$id"`
		Title       string                `json:"title"`
		Description string                `json:"description"`
		Type        string                `json:"type"`
		Required    []string              `json:"required"`
		Properties  map[string]schemaProp `json:"properties"`
		AllOf       []schemaRule          `json:"allOf"`
		Unevaluated bool                  `json:"unevaluatedProperties"`
	}
	schemaProp struct {
		Description string   `json:"description"`
		Type        string   `json:"type,omitempty"`
		Enum        []string `json:"enum,omitempty"`
		Pattern     string   `json:"pattern,omitempty"`
	}
	schemaRule struct {
		If struct {
			Properties struct {
				Event struct {
					Const string `json:"const"`
				} `json:"event"`
			} `json:"properties"`
		} `json:"if"`
		Then schemaThen `json:"then"`
	}
	schemaThen struct {
		Description   string `json:"description"`
		PropertyNames *struct {
			Enum []string `json:"enum"`
		} `json:"propertyNames,omitempty"`
		AdditionalProperties *bool    `json:"additionalProperties,omitempty"`
		Required             []string `json:"required,omitempty"`
	}
)

// docRows reads the rows of the table under "## "+section of
// docs/logging.md, in order: the first column's names, each with the
// row's cells.
func docRows(t *testing.T, section string) (names []string, cells map[string][]string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, _ := strings.Cut(string(doc), "\n## "+section+"\n")
	text, _, _ = strings.Cut(text, "\n## ")
	cells = map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		c := strings.Split(line, "|")
		if len(c) < 3 || strings.TrimSpace(c[0]) != "" {
			continue // not a row (the header has no `names`)
		}
		for _, m := range backticked.FindAllStringSubmatch(c[1], -1) {
			names = append(names, m[1])
			cells[m[1]] = c[1 : len(c)-1]
		}
	}
	return names, cells
}

var backticked = regexp.MustCompile("`([^`]+)`")

func plain(cell string) string { return strings.TrimSpace(strings.ReplaceAll(cell, "`", "")) }

// idFields are the members written as decimal strings (docs/logging.md,
// "Every line").
var idFields = []string{FieldCallID, FieldPeerID, FieldConnectionID}

// accountPattern is what config.CheckAccount accepts (config's
// TestAccountName holds docs/log.schema.json's pattern to it).
const accountPattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

// buildLogSchema writes the schema docs/logging.md's tables make: every
// member with its type, the events, and per event the fields of its row
// (mtproto.gotd lines also carry the library's fields). The per-event
// required fields (what CONTRACT §4 promises) are kept from old.
func buildLogSchema(t *testing.T, old schemaDoc) []byte {
	t.Helper()
	required := map[string][]string{}
	for _, r := range old.AllOf {
		required[r.If.Properties.Event.Const] = r.Then.Required
	}
	_, every := docRows(t, "Every line")
	fieldNames, fields := docRows(t, "Fields")
	eventNames, events := docRows(t, "Events")
	s := schemaDoc{
		Schema: "https://json-schema.org/draft/2020-12/schema",
		ID:     "https://github.com/calld/calld/docs/log.schema.json",
		Title:  "a calld log line",
		Description: "One line of calld's JSON log (docs/logging.md, CONTRACT §4), made from docs/logging.md's tables " +
			"by `go test ./internal/logging -run TestLogSchemaMatchesDocs -update`. Only the documented members may " +
			"appear, on each event only the fields of its row, except on mtproto.gotd lines, which carry the " +
			"MTProto library's own fields. The e2e suite validates every line its daemons write against it.",
		Type:        "object",
		Required:    []string{FieldTime, FieldLevel, FieldEvent, FieldMessage},
		Properties:  map[string]schemaProp{},
		Unevaluated: false,
	}
	s.Properties[FieldTime] = schemaProp{Description: plain(every[FieldTime][1]), Type: "string",
		Pattern: `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$`}
	s.Properties[FieldLevel] = schemaProp{Description: plain(every[FieldLevel][1]), Enum: []string{"debug", "info", "warn", "error"}}
	s.Properties[FieldEvent] = schemaProp{Description: plain(every[FieldEvent][1]), Enum: eventNames}
	s.Properties[FieldMessage] = schemaProp{Description: plain(every[FieldMessage][1]), Type: "string"}
	jsonType := map[string]string{"string": "string", "number": "number", "bool": "boolean"}
	for _, f := range fieldNames {
		typ, ok := jsonType[plain(fields[f][1])]
		if !ok {
			t.Fatalf("docs/logging.md: field %s has type %q, not string, number or bool", f, plain(fields[f][1]))
		}
		p := schemaProp{Description: plain(fields[f][2]), Type: typ}
		if slices.Contains(idFields, f) {
			p.Pattern = "^-?[0-9]+$"
		}
		if f == FieldAccount {
			p.Pattern = accountPattern
		}
		s.Properties[f] = p
	}
	for _, ev := range eventNames {
		var r schemaRule
		r.If.Properties.Event.Const = ev
		r.Then.Description = plain(events[ev][2])
		if ev == EventMTProtoGotd {
			yes := true
			r.Then.Description += " (and the library's own fields)"
			r.Then.AdditionalProperties = &yes
		} else {
			// "Any line may carry component", and every line account
			// when it is set (docs/logging.md, Every line).
			allowed := []string{FieldTime, FieldLevel, FieldEvent, FieldMessage, FieldComponent, FieldAccount}
			for _, m := range backticked.FindAllStringSubmatch(events[ev][3], -1) {
				if _, ok := fields[m[1]]; ok && !slices.Contains(allowed, m[1]) {
					allowed = append(allowed, m[1])
				}
			}
			r.Then.PropertyNames = &struct {
				Enum []string `json:"enum"`
			}{allowed}
		}
		r.Then.Required = required[ev]
		s.AllOf = append(s.AllOf, r)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLogSchemaMatchesDocs holds docs/log.schema.json to docs/logging.md
// (which TestDocsTablesAreConstants holds to the constants): the schema
// is what the tables make. -update rewrites it.
func TestLogSchemaMatchesDocs(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var old schemaDoc
	if err := json.Unmarshal(data, &old); err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	want := buildLogSchema(t, old)
	if *update {
		if err := os.WriteFile(schemaPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(data, want) {
		t.Errorf("%s is not what docs/logging.md's tables make; run\n"+
			"\tgo test ./internal/logging -run TestLogSchemaMatchesDocs -update\nand review the diff. It should be:\n%s", schemaPath, want)
	}
}

// TestLogSchemaExamples: the example lines of docs/logging.md and lines
// written by New validate against docs/log.schema.json; lines that break
// it do not.
func TestLogSchemaExamples(t *testing.T) {
	sch := compileLogSchema(t)
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ex, _ := strings.Cut(string(doc), "\n## Example lines\n")
	_, ex, _ = strings.Cut(ex, "```\n")
	ex, _, _ = strings.Cut(ex, "```")
	good := strings.Split(strings.TrimSpace(ex), "\n")
	if len(good) < 5 {
		t.Fatalf("docs/logging.md has %d example lines", len(good))
	}
	bad := map[string]string{
		"no event":          `{"time":"2026-03-14T09:26:53.863793Z","level":"info","message":"x"}`,
		"unknown event":     `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"daemon.nap","message":"x"}`,
		"undocumented key":  `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"daemon.reload","message":"x","colour":"red"}`,
		"foreign field":     `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"daemon.reload","message":"x","call_id":"1"}`,
		"id as a number":    `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"call.ended","call_id":1,"reason":"busy","ended_by":"local","duration":0,"message":"x"}`,
		"missing field":     `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"call.ended","call_id":"1","reason":"busy","duration":0,"message":"x"}`,
		"time without µs":   `{"time":"2026-03-14T09:26:53Z","level":"info","event":"daemon.reload","message":"x"}`,
		"level not a level": `{"time":"2026-03-14T09:26:53.863793Z","level":"loud","event":"daemon.reload","message":"x"}`,
	}
	var buf bytes.Buffer
	log, _, err := New(Options{Level: "debug", Format: "json", Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Str(FieldEvent, EventMTProtoGotd).Str(FieldComponent, "mtproto").Str("conn_id", "x").Msg("a gotd line")
	log.Info().Msg("no event set")
	good = append(good, strings.Split(strings.TrimSpace(buf.String()), "\n")...)
	for _, line := range good {
		if err := validateLine(sch, line); err != nil {
			t.Errorf("%s\n%v", line, err)
		}
	}
	for name, line := range bad {
		if validateLine(sch, line) == nil {
			t.Errorf("%s: %s validates", name, line)
		}
	}
}

func compileLogSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	return sch
}

func validateLine(sch *jsonschema.Schema, line string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}
