package control

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/calld/calld"
)

// FuzzAPI feeds arbitrary requests to Handler: it must never panic and
// must always answer JSON (NDJSON for event streams); errors must have
// the contract's shape and a status that matches their code.
func FuzzAPI(f *testing.F) {
	seeds := []struct {
		method, path, query, body string
		allowed                   bool
	}{
		{"GET", "/v1/status", "", "", false},
		{"GET", "/v1/calls", "all=1", "", false},
		{"GET", "/v1/calls/9007199254740993", "", "", false},
		{"POST", "/v1/calls/9007199254740993/discard", "", `{"reason":"busy"}`, true},
		{"POST", "/v1/calls/-5000000000000000001/connection", "", `{"connection_id":"55"}`, true},
		{"POST", "/v1/calls", "", `{"peer":"@alice","video":true}`, true},
		{"POST", "/v1/calls/9007199254740993/accept", "", "", true},
		{"GET", "/v1/calls/-5000000000000000001/media", "", "", true},
		{"GET", "/v1/events", "since=2", "", false},
		{"GET", "/v1/events", "follow=0", "", false},
		{"POST", "/v1/login", "", `{"phone":"+1555"}`, true},
		{"PUT", "/v1//calls/../status", "a=%zz", `{"reason":`, true},
		{"HEAD", "/v1/events", "", "", false},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.body, s.allowed)
	}
	f.Fuzz(func(t *testing.T, method, path, rawQuery, body string, allowed bool) {
		hub := NewHub(4)
		hub.Close() // event streams end after their replay
		srv := NewServer(newMemService(hub), hub, Options{DaemonUID: 4321})
		if method == "" || strings.ContainsAny(method, " \t\r\n") {
			method = "GET"
		}
		req := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: rawQuery},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     http.Header{},
			Body:       io.NopCloser(strings.NewReader(body)),
			Host:       "calld",
			RequestURI: path,
		}
		ctx := context.Background()
		if allowed {
			ctx = WithCred(ctx, Cred{UID: 4321})
		}
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)

		res := rec.Result()
		data := rec.Body.Bytes()
		ct := res.Header.Get("Content-Type")
		if res.StatusCode == http.StatusInternalServerError {
			t.Fatalf("%s %s?%s %q: 500 (a panic or a bug): %s", method, path, rawQuery, body, data)
		}
		if method == "HEAD" {
			return
		}
		switch ct {
		case "application/x-ndjson":
			if res.StatusCode != 200 {
				t.Fatalf("NDJSON with status %d", res.StatusCode)
			}
			for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Fatalf("invalid NDJSON line %q", line)
				}
			}
		case "application/json":
			if !json.Valid(data) {
				t.Fatalf("invalid JSON %q", data)
			}
			if res.StatusCode >= 400 {
				var eb calld.ErrorBody
				if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
					t.Fatalf("error body %q", data)
				}
				want := StatusCode(eb.Error.Code)
				if res.StatusCode != want && !(eb.Error.Code == "invalid" && (res.StatusCode == 405 || res.StatusCode == 413)) {
					t.Fatalf("status %d for code %q", res.StatusCode, eb.Error.Code)
				}
			}
		default:
			t.Fatalf("%s %s: status %d with Content-Type %q: %q", method, path, res.StatusCode, ct, data)
		}
	})
}
