package e2e

import (
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
	for i, line := range strings.Split(logs, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if err := validLogLine(logSchema, line); err != nil {
			t.Errorf("log line %d does not match %s: %v\n\tline: %s", i+1, logSchemaPath, err, line)
		}
	}
}

func validLogLine(sch *jsonschema.Schema, line string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// TestLogSchemaCheckFails: the check rejects a line that breaks the
// schema and accepts one that keeps it.
func TestLogSchemaCheckFails(t *testing.T) {
	sch, err := jsonschema.NewCompiler().Compile(logSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{`{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"call.ended","call_id":"1","reason":"busy","ended_by":"local","duration":0,"message":"call ended"}`, true},
		{`{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"call.ended","call_id":1,"reason":"busy","ended_by":"local","duration":0,"message":"call ended"}`, false},
		{`{"time":"2026-03-14T09:26:53.863793Z","level":"info","event":"daemon.nap","message":"zzz"}`, false},
		{`calld: not JSON`, false},
	} {
		if err := validLogLine(sch, tc.line); (err == nil) != tc.ok {
			t.Errorf("%s: valid %v, want %v (%v)", tc.line, err == nil, tc.ok, err)
		}
	}
}
