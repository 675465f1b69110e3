package logging

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaPath is the JSON Schema of a log line, relative to this package.
const schemaPath = "../../docs/log.schema.json"

// logSchema is the parsed docs/log.schema.json, as far as the tests read
// it.
type logSchema struct {
	Properties map[string]struct {
		Type string   `json:"type"`
		Enum []string `json:"enum"`
	} `json:"properties"`
	AllOf []struct {
		If struct {
			Properties struct {
				Event struct {
					Const string `json:"const"`
				} `json:"event"`
			} `json:"properties"`
		} `json:"if"`
		Then struct {
			PropertyNames struct {
				Enum []string `json:"enum"`
			} `json:"propertyNames"`
			AdditionalProperties *bool `json:"additionalProperties"`
		} `json:"then"`
	} `json:"allOf"`
}

// docRows reads the rows of the table under "## "+section of
// docs/logging.md: the names of the first column, and each row's cells.
func docRows(t *testing.T, section string) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, _ := strings.Cut(string(doc), "\n## "+section+"\n")
	text, _, _ = strings.Cut(text, "\n## ")
	name := regexp.MustCompile("`([^`]+)`")
	rows := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.TrimSpace(cells[0]) != "" {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]] = cells[1 : len(cells)-1]
		}
	}
	return rows
}

// TestLogSchemaMatchesDocs holds docs/log.schema.json to docs/logging.md
// (which TestDocsTablesAreConstants holds to the constants): the schema
// describes exactly the documented members with their documented types,
// its event enum is exactly the Events table, and each event allows
// exactly the fields of its row.
func TestLogSchemaMatchesDocs(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s logSchema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	every := docTable(t, "Every line")
	fields := docRows(t, "Fields")
	want := slices.Sorted(slices.Values(append(slices.Clone(every), slices.Collect(maps.Keys(fields))...)))
	if got := slices.Sorted(maps.Keys(s.Properties)); !slices.Equal(got, want) {
		t.Errorf("%s describes the members %v;\ndocs/logging.md documents %v", schemaPath, got, want)
	}
	jsonType := map[string]string{"string": "string", "number": "number", "bool": "boolean"}
	for f, cells := range fields {
		if got, want := s.Properties[f].Type, jsonType[strings.TrimSpace(cells[1])]; got != want {
			t.Errorf("%s: %s has type %q, docs/logging.md says %q", schemaPath, f, got, want)
		}
	}

	events := docRows(t, "Events")
	delete(events, "event") // the header
	if got, want := slices.Sorted(slices.Values(s.Properties[FieldEvent].Enum)), slices.Sorted(maps.Keys(events)); !slices.Equal(got, want) {
		t.Errorf("%s's events %v;\ndocs/logging.md's %v", schemaPath, got, want)
	}
	name := regexp.MustCompile("`([^`]+)`")
	seen := map[string]bool{}
	for _, rule := range s.AllOf {
		ev := rule.If.Properties.Event.Const
		cells, ok := events[ev]
		if !ok {
			t.Errorf("%s has a rule for %q, which is no event of docs/logging.md", schemaPath, ev)
			continue
		}
		seen[ev] = true
		if ev == EventMTProtoGotd {
			if a := rule.Then.AdditionalProperties; a == nil || !*a {
				t.Errorf("%s: %s lines carry the library's own fields: want additionalProperties true", schemaPath, ev)
			}
			continue
		}
		want := slices.Clone(every)
		for _, m := range name.FindAllStringSubmatch(cells[3], -1) {
			if _, ok := fields[m[1]]; ok {
				want = append(want, m[1])
			}
		}
		slices.Sort(want)
		if got := slices.Sorted(slices.Values(rule.Then.PropertyNames.Enum)); !slices.Equal(got, want) {
			t.Errorf("%s lets %s lines carry %v;\ndocs/logging.md's row says %v", schemaPath, ev, got, want)
		}
	}
	for ev := range events {
		if !seen[ev] {
			t.Errorf("%s has no rule for %s", schemaPath, ev)
		}
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
