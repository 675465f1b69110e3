package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Every line a daemon of the suite writes (standard error and output,
// [log] format json) must validate against docs/log.schema.json.

const logSchemaPath = "../docs/log.schema.json"

var (
	logSchemaOnce sync.Once
	logSchema     *jsonschema.Schema
	logSchemaErr  error
)

// checkLogLines fails t for each line of logs (a daemon's whole output)
// that is not a JSON object valid against docs/log.schema.json, naming
// the line and why.
func checkLogLines(t *testing.T, logs string) {
	t.Helper()
	logSchemaOnce.Do(func() {
		logSchema, logSchemaErr = jsonschema.NewCompiler().Compile(logSchemaPath)
	})
	if logSchemaErr != nil {
		t.Fatalf("%s: %v", logSchemaPath, logSchemaErr)
	}
	for _, p := range logLineProblems(logSchema, logs) {
		t.Error(p)
	}
}

// logLineProblems says which lines of logs do not validate against sch.
func logLineProblems(sch *jsonschema.Schema, logs string) []string {
	var out []string
	for i, line := range strings.Split(logs, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if err := validLogLine(sch, line); err != nil {
			out = append(out, fmt.Sprintf("log line %d does not match %s: %v\n\tline: %s", i+1, logSchemaPath, err, line))
		}
	}
	return out
}

func validLogLine(sch *jsonschema.Schema, line string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// TestLogSchemaCheckFails: the check rejects lines that break the schema
// and accepts those that keep it.
func TestLogSchemaCheckFails(t *testing.T) {
	sch, err := jsonschema.NewCompiler().Compile(logSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	const (
		ended    = `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"call.ended","call_id":"1","reason":"busy","ended_by":"local","duration":0,"message":"call ended"}`
		failed   = `{"time":"2026-03-14T09:26:53.863793Z","level":"error","event":"daemon.failed","err":"boom","message":"calld failed"}`
		numberID = `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"call.ended","call_id":1,"reason":"busy","ended_by":"local","duration":0,"message":"call ended"}`
		unknown  = `{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"daemon.nap","message":"zzz"}`
	)
	for _, tc := range []struct {
		name, logs string
		bad        int
	}{
		{"valid lines", ended + "\n" + failed + "\n", 0},
		{"an id as a number", ended + "\n" + numberID + "\n", 1},
		{"an unknown event", unknown + "\n", 1},
		{"plain text", "calld: not JSON\n" + ended, 1},
		{"an exit message after daemon.failed", failed + "\ncalld serve: boom\n", 1},
	} {
		if got := logLineProblems(sch, tc.logs); len(got) != tc.bad {
			t.Errorf("%s: %d problems %q, want %d", tc.name, len(got), got, tc.bad)
		}
	}
}
