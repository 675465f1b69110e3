package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Every answer the suite gets over the control socket is validated
// against docs/openapi.yaml: the raw requests (env.http and the tests'
// own clients) through apiTransport, and the CLI's --json output (the
// API's body as it came) in cliJSON. A mismatch fails the test.

const openAPIPath = "../docs/openapi.yaml"

// apiDoc is a loaded OpenAPI document.
type apiDoc struct {
	model  *v3.Document
	v      validator.Validator
	opts   *config.ValidationOptions
	schema schema_validation.SchemaValidator
}

var (
	theAPIOnce sync.Once
	theAPI     *apiDoc
	theAPIErr  error
)

// loadAPI returns docs/openapi.yaml, loaded once for the package.
func loadAPI(t *testing.T) *apiDoc {
	t.Helper()
	theAPIOnce.Do(func() {
		data, err := os.ReadFile(openAPIPath)
		if err != nil {
			theAPIErr = err
			return
		}
		theAPI, theAPIErr = newAPIDoc(data)
	})
	if theAPIErr != nil {
		t.Fatalf("%s: %v", openAPIPath, theAPIErr)
	}
	return theAPI
}

func newAPIDoc(data []byte) (*apiDoc, error) {
	doc, err := libopenapi.NewDocument(data)
	if err != nil {
		return nil, err
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	return &apiDoc{
		model:  &m.Model,
		v:      validator.NewValidatorFromV3Model(&m.Model),
		opts:   config.NewValidationOptions(),
		schema: schema_validation.NewSchemaValidator(),
	}, nil
}

// problems formats the validator's errors.
func problems(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n\t%s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n\t\t%s: %s", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// response returns the described response of an operation to status
// (else its default), or nil.
func (a *apiDoc) response(req *http.Request, status int) (*v3.Response, error) {
	item, errs, _ := paths.FindPath(req, a.model, a.opts)
	if item == nil {
		return nil, fmt.Errorf("%s %s is not described%s", req.Method, req.URL.Path, problems(errs))
	}
	method := req.Method
	if method == http.MethodHead {
		method = http.MethodGet // ServeMux serves HEAD with the GET route
	}
	op := item.GetOperations().GetOrZero(strings.ToLower(method))
	if op == nil || op.Responses == nil {
		return nil, fmt.Errorf("%s %s is not described", req.Method, req.URL.Path)
	}
	if r := op.Responses.Codes.GetOrZero(strconv.Itoa(status)); r != nil {
		return r, nil
	}
	if op.Responses.Default != nil {
		return op.Responses.Default, nil
	}
	return nil, fmt.Errorf("%s %s: status %d is not described", req.Method, req.URL.Path, status)
}

// check validates resp (to req) against the document; an NDJSON body is
// returned wrapped so that each line is checked as it is read, and
// reported through fail.
func (a *apiDoc) check(req *http.Request, resp *http.Response, fail func(string)) error {
	what := fmt.Sprintf("%s %s: %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		if _, err := a.response(req, resp.StatusCode); err != nil {
			// No route: the server's own 404/405, an Error.
			return a.checkBody(what, resp, mt, a.model.Components.Schemas.GetOrZero("Error").Schema())
		}
	}
	if mt == "application/x-ndjson" {
		r, err := a.response(req, resp.StatusCode)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		media := r.Content.GetOrZero(mt)
		if media == nil || media.Schema == nil {
			return fmt.Errorf("%s: %s is not a described content type", what, mt)
		}
		resp.Body = &lineChecker{rc: resp.Body, what: what, schema: media.Schema.Schema(), a: a, fail: fail}
		return nil
	}
	if req.Method == http.MethodHead {
		return nil
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return nil // the test sees the read error itself
	}
	copy := *resp
	copy.Body = io.NopCloser(bytes.NewReader(data))
	if ok, errs := a.v.ValidateHttpResponse(req, &copy); !ok {
		return fmt.Errorf("%s does not match %s:%s\n\tbody: %s", what, openAPIPath, problems(errs), clip(data))
	}
	return nil
}

// checkBody validates a whole JSON body against schema.
func (a *apiDoc) checkBody(what string, resp *http.Response, mt string, schema *base.Schema) error {
	if mt != "application/json" {
		return fmt.Errorf("%s: content type %q, want application/json", what, mt)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	if ok, errs := a.schema.ValidateSchemaBytes(schema, data); !ok {
		return fmt.Errorf("%s does not match %s:%s\n\tbody: %s", what, openAPIPath, problems(errs), clip(data))
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// lineChecker validates each line of an NDJSON body as it is read.
type lineChecker struct {
	rc     io.ReadCloser
	what   string
	schema *base.Schema
	a      *apiDoc
	fail   func(string)
	buf    []byte
	line   int
}

func (l *lineChecker) Read(p []byte) (int, error) {
	n, err := l.rc.Read(p)
	l.buf = append(l.buf, p[:n]...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.checkLine(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if err == io.EOF && len(bytes.TrimSpace(l.buf)) > 0 {
		l.checkLine(l.buf)
		l.buf = nil
	}
	return n, err
}

func (l *lineChecker) checkLine(line []byte) {
	l.line++
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if ok, errs := l.a.schema.ValidateSchemaBytes(l.schema, line); !ok {
		l.fail(fmt.Sprintf("%s: line %d does not match %s:%s\n\tline: %s", l.what, l.line, openAPIPath, problems(errs), clip(line)))
	}
}

func (l *lineChecker) Close() error { return l.rc.Close() }

// validating is an http.RoundTripper that checks every answer against
// the document and reports mismatches to a collector.
type validating struct {
	base http.RoundTripper
	a    *apiDoc
	c    *mismatches
}

func (v validating) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if err := v.a.check(req, resp, v.c.add); err != nil {
		v.c.add(err.Error())
	}
	return resp, nil
}

// mismatches collects what did not validate, from any goroutine, and
// fails the test with them at its end (a stream read by a goroutine may
// outlive a direct t.Errorf).
type mismatches struct {
	mu   sync.Mutex
	list []string
}

func (m *mismatches) add(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, s)
}

func (m *mismatches) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.list
	m.list = nil
	return l
}

var testMismatches sync.Map // *testing.T → *mismatches

// apiTransport wraps base so that every answer is validated against
// docs/openapi.yaml; a mismatch fails t (at its end).
func apiTransport(t *testing.T, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	a := loadAPI(t)
	c, loaded := testMismatches.LoadOrStore(t, &mismatches{})
	if !loaded {
		t.Cleanup(func() {
			for _, m := range c.(*mismatches).take() {
				t.Errorf("API answer: %s", m)
			}
			testMismatches.Delete(t)
		})
	}
	return validating{base: base, a: a, c: c.(*mismatches)}
}

// cliOperations maps a CLI subcommand whose --json output is an API
// answer as it came to the request that answered it.
var cliOperations = map[string]struct {
	method, path string // path with {id} for the first argument
	status       int
}{
	"status":  {http.MethodGet, "/v1/status", 200},
	"calls":   {http.MethodGet, "/v1/calls", 200},
	"show":    {http.MethodGet, "/v1/calls/{id}", 200},
	"call":    {http.MethodPost, "/v1/calls", 201},
	"accept":  {http.MethodPost, "/v1/calls/{id}/accept", 200},
	"discard": {http.MethodPost, "/v1/calls/{id}/discard", 200},
}

// checkCLIJSON validates the --json output of a successful `calld
// args...` as the API answer it printed.
func checkCLIJSON(t *testing.T, args []string, out string) {
	t.Helper()
	op, ok := cliOperations[args[0]]
	if !ok {
		return
	}
	path := op.path
	if before, after, ok := strings.Cut(path, "{id}"); ok {
		path = before + args[1] + after // args[1] exists only then
	}
	req, err := http.NewRequest(op.method, "http://calld"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{
		StatusCode: op.status,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(out)),
		Request:    req,
	}
	if err := loadAPI(t).check(req, resp, func(s string) { t.Error(s) }); err != nil {
		t.Errorf("calld %s --json: %v", strings.Join(args, " "), err)
	}
}

// TestOpenAPIValidatorFails shows that the validating layer rejects what
// does not match: a body against a deliberately wrong schema, a field the
// document does not describe, an undescribed route and a bad NDJSON line.
func TestOpenAPIValidatorFails(t *testing.T) {
	good := loadAPI(t)
	data, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	// Status.version as an integer: every real status answer is wrong.
	wrongText := strings.Replace(string(data), "        version: {type: string}\n", "        version: {type: integer}\n", 1)
	if wrongText == string(data) {
		t.Fatal("the deliberately wrong schema was not made: Status.version moved?")
	}
	wrong, err := newAPIDoc([]byte(wrongText))
	if err != nil {
		t.Fatal(err)
	}
	status := `{"version":"dev","ready":true,"state":"ready","status":"ready","telegram":{"connected":true,"authorized":true,"self_id":"1","dc":2},"updates":{"pts":1,"qts":0,"seq":1,"date":5},"calls":{"live":0,"total":0}}`
	event := `{"seq":1,"at":"2026-01-02T03:04:05.123Z","event":"call.state","call_id":"5","from":"","to":"waiting","reason":"","duration":0}`
	for _, tc := range []struct {
		name        string
		doc         *apiDoc
		method, uri string
		status      int
		ctype, body string
		wantErr     bool
	}{
		{"status matches", good, "GET", "/v1/status", 200, "application/json", status, false},
		{"status, wrong schema", wrong, "GET", "/v1/status", 200, "application/json", status, true},
		{"undescribed field", good, "GET", "/v1/status", 200, "application/json", strings.Replace(status, `"ready":true`, `"ready":true,"extra":1`, 1), true},
		{"id as a number", good, "GET", "/v1/status", 200, "application/json", strings.Replace(status, `"self_id":"1"`, `"self_id":1`, 1), true},
		{"error shape", good, "GET", "/v1/calls/5", 404, "application/json", `{"error":{"code":"not_found","message":"no"}}`, false},
		{"bad error shape", good, "GET", "/v1/calls/5", 404, "application/json", `{"error":"no"}`, true},
		{"no route, error shape", good, "GET", "/v1/nothing", 404, "application/json", `{"error":{"code":"not_found","message":"no"}}`, false},
		{"no route, other shape", good, "GET", "/v1/nothing", 404, "application/json", `{"oops":1}`, true},
		{"undescribed route answered", good, "GET", "/v1/nothing", 200, "application/json", `{}`, true},
		{"event lines", good, "GET", "/v1/events?since=0", 200, "application/x-ndjson", event + "\n" + `{"error":{"code":"slow_reader","message":"x"}}` + "\n", false},
		{"metrics exposition", good, "GET", "/metrics", 200, "text/plain; version=0.0.4; charset=utf-8", "# HELP calld_calls_live x\ncalld_calls_live 1\n", false},
		{"health degraded", good, "GET", "/v1/health", 503, "application/json", `{"status":"degraded","checks":{"ready":{"ok":true},"connected":{"ok":false,"reason":"connecting"},"authorized":{"ok":true}}}`, false},
		{"health check as a bare boolean", good, "GET", "/v1/health", 503, "application/json", `{"status":"degraded","checks":{"ready":{"ok":true},"connected":false,"authorized":{"ok":true}}}`, true},
		{"bad event line", good, "GET", "/v1/events?since=0", 200, "application/x-ndjson", event + "\n" + strings.Replace(event, `"seq":1`, `"seq":"1"`, 1) + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://calld"+tc.uri, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.ctype}},
				Body: io.NopCloser(strings.NewReader(tc.body)), Request: req}
			var got []string
			if err := tc.doc.check(req, resp, func(s string) { got = append(got, s) }); err != nil {
				got = append(got, err.Error())
			}
			// The body stays readable, and NDJSON lines are checked as read.
			sc := bufio.NewScanner(resp.Body)
			var read strings.Builder
			for sc.Scan() {
				read.WriteString(sc.Text() + "\n")
			}
			if strings.TrimSpace(read.String()) != strings.TrimSpace(tc.body) {
				t.Errorf("the body read after the check is %q, want %q", read.String(), tc.body)
			}
			if (len(got) > 0) != tc.wantErr {
				t.Errorf("mismatches %q, want any: %v", got, tc.wantErr)
			}
		})
	}
}
