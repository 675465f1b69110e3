package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calld/calld"
)

func (e *testEnv) do(t *testing.T, method, path, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://calld"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// wantError checks the {"error":{"code","message"}} shape.
func wantError(t *testing.T, status int, hdr http.Header, body string, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status %d, want %d (body %s)", status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var eb calld.ErrorBody
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if eb.Error.Code != wantCode || eb.Error.Message == "" {
		t.Errorf("error %+v, want code %q and a message", eb.Error, wantCode)
	}
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	return v
}

func TestRoutes(t *testing.T) {
	ringing := strconv.FormatInt(idRinging, 10)
	active := strconv.FormatInt(idActive, 10)
	ended := strconv.FormatInt(idEnded, 10)
	unknown := strconv.FormatInt(idUnknown, 10)

	type tc struct {
		name, method, path, body string
		status                   int
		code                     string // error code, "" for success
		contains                 []string
		check                    func(t *testing.T, env *testEnv, hdr http.Header, body string)
	}
	tests := []tc{
		{name: "status", method: "GET", path: "/v1/status", status: 200,
			contains: []string{`"self_id":"9007199254740997"`, `"updates":{"pts":10,"qts":2,"seq":3,"date":1714557600}`, `"calls":{"live":2,"total":3}`, `"ready":true`, `"dc":2`}},
		{name: "status panic is 500 JSON", method: "GET", path: "/v1/status", status: 500, code: calld.EINTERNAL,
			check: nil},
		{name: "calls live newest first", method: "GET", path: "/v1/calls", status: 200,
			check: func(t *testing.T, _ *testEnv, _ http.Header, body string) {
				got := decode[calld.CallsBody](t, body).Calls
				if len(got) != 2 || got[0].ID != idRinging || got[1].ID != idActive {
					t.Errorf("calls %+v, want ringing then active", got)
				}
			},
			contains: []string{`"id":"` + ringing + `"`, `"access_hash":"9007199254740995"`, `"id":"` + active + `"`,
				`"ringing_at":"2024-05-01T10:03:00.123456789Z"`, `"active_at":"2024-05-01T10:02:00.123456789Z"`, `"connection_id":"0"`}},
		{name: "calls all", method: "GET", path: "/v1/calls?all=1", status: 200,
			check: func(t *testing.T, _ *testEnv, _ http.Header, body string) {
				got := decode[calld.CallsBody](t, body).Calls
				if len(got) != 3 || got[0].ID != idRinging || got[2].ID != idEnded {
					t.Errorf("calls %+v, want 3 newest first", got)
				}
			}},
		{name: "calls all=maybe", method: "GET", path: "/v1/calls?all=maybe", status: 400, code: calld.EINVALID},
		{name: "calls bad query", method: "GET", path: "/v1/calls?all=%zz", status: 400, code: calld.EINVALID},
		{name: "call", method: "GET", path: "/v1/calls/" + ringing, status: 200,
			contains: []string{`"id":"` + ringing + `"`, `"peer_id":"1001"`, `"state":"ringing"`, `"direction":"incoming"`, `"created_at":"2024-05-01T10:03:00.123456789Z"`},
			check: func(t *testing.T, _ *testEnv, _ http.Header, body string) {
				if strings.Contains(body, `"ended_at"`) {
					t.Errorf("absent time rendered: %s", body)
				}
			}},
		{name: "call negative id", method: "GET", path: "/v1/calls/" + active, status: 200, contains: []string{`"id":"` + active + `"`}},
		{name: "call unknown", method: "GET", path: "/v1/calls/" + unknown, status: 404, code: calld.ENOTFOUND},
		{name: "call id not numeric", method: "GET", path: "/v1/calls/abc", status: 400, code: calld.EINVALID},
		{name: "call id plus sign", method: "GET", path: "/v1/calls/+77", status: 400, code: calld.EINVALID},
		{name: "call id overflow", method: "GET", path: "/v1/calls/9223372036854775808", status: 400, code: calld.EINVALID},
		{name: "discard busy", method: "POST", path: "/v1/calls/" + ringing + "/discard", body: `{"reason":"busy"}`, status: 200,
			contains: []string{`"state":"ended"`, `"reason":"busy"`, `"ended_by":"local"`}},
		{name: "discard without body is auto", method: "POST", path: "/v1/calls/" + active + "/discard", status: 200,
			contains: []string{`"reason":"hangup"`}},
		{name: "discard empty reason is auto", method: "POST", path: "/v1/calls/" + active + "/discard", body: `{}`, status: 200,
			contains: []string{`"reason":"hangup"`}},
		{name: "discard ended is conflict", method: "POST", path: "/v1/calls/" + ended + "/discard", body: `{"reason":"hangup"}`, status: 409, code: calld.ECONFLICT},
		{name: "discard unknown", method: "POST", path: "/v1/calls/" + unknown + "/discard", status: 404, code: calld.ENOTFOUND},
		{name: "discard bad reason", method: "POST", path: "/v1/calls/" + ringing + "/discard", body: `{"reason":"rude"}`, status: 400, code: calld.EINVALID},
		{name: "discard unknown field", method: "POST", path: "/v1/calls/" + ringing + "/discard", body: `{"reson":"busy"}`, status: 400, code: calld.EINVALID,
			contains: []string{`reson`}},
		{name: "discard malformed JSON", method: "POST", path: "/v1/calls/" + ringing + "/discard", body: `{"reason":`, status: 400, code: calld.EINVALID},
		{name: "discard trailing data", method: "POST", path: "/v1/calls/" + ringing + "/discard", body: `{} {}`, status: 400, code: calld.EINVALID},
		{name: "discard wrong type", method: "POST", path: "/v1/calls/" + ringing + "/discard", body: `{"reason":1}`, status: 400, code: calld.EINVALID,
			contains: []string{`field \"reason\": expected a string, got number`}},
		{name: "place", method: "POST", path: "/v1/calls", body: `{"peer":"@alice","video":true}`, status: 201,
			contains: []string{`"state":"waiting"`, `"video":true`, `"direction":"outgoing"`},
			check: func(t *testing.T, _ *testEnv, hdr http.Header, body string) {
				c := decode[calld.Call](t, body)
				if loc := hdr.Get("Location"); loc != "/v1/calls/"+strconv.FormatInt(c.ID, 10) {
					t.Errorf("Location %q for call %d", loc, c.ID)
				}
			}},
		{name: "place by user id", method: "POST", path: "/v1/calls", body: `{"peer":"1234"}`, status: 201},
		{name: "place bad peer", method: "POST", path: "/v1/calls", body: `{"peer":"alice smith"}`, status: 400, code: calld.EINVALID},
		{name: "place zero user id", method: "POST", path: "/v1/calls", body: `{"peer":"0"}`, status: 400, code: calld.EINVALID},
		{name: "place no body", method: "POST", path: "/v1/calls", status: 400, code: calld.EINVALID},
		{name: "place telegram error is 502", method: "POST", path: "/v1/calls", body: `{"peer":"@invalid_peer"}`, status: 502, code: "CALL_PEER_INVALID"},
		{name: "accept", method: "POST", path: "/v1/calls/" + ringing + "/accept", status: 200, contains: []string{`"state":"accepting"`}},
		{name: "accept active is conflict", method: "POST", path: "/v1/calls/" + active + "/accept", status: 409, code: calld.ECONFLICT},
		{name: "accept unknown field", method: "POST", path: "/v1/calls/" + ringing + "/accept", body: `{"x":1}`, status: 400, code: calld.EINVALID},
		{name: "media", method: "GET", path: "/v1/calls/" + active + "/media", status: 200,
			contains: []string{`"key":"AAEC/v8="`, `"key_fingerprint":"-7"`, `"peer_tag":"dGFn"`, `"id":"55"`, `"library_versions":["4.0.0"]`, `"turn":true`}},
		{name: "media not active", method: "GET", path: "/v1/calls/" + ringing + "/media", status: 409, code: calld.ECONFLICT},
		{name: "media unknown", method: "GET", path: "/v1/calls/" + unknown + "/media", status: 404, code: calld.ENOTFOUND},
		{name: "connection as string", method: "POST", path: "/v1/calls/" + active + "/connection", body: `{"connection_id":"56"}`, status: 200,
			contains: []string{`"connection_id":"56"`}},
		{name: "connection as number", method: "POST", path: "/v1/calls/" + active + "/connection", body: `{"connection_id":55}`, status: 200,
			contains: []string{`"connection_id":"55"`}},
		{name: "connection not of the call", method: "POST", path: "/v1/calls/" + active + "/connection", body: `{"connection_id":"57"}`, status: 400, code: calld.EINVALID},
		{name: "connection missing", method: "POST", path: "/v1/calls/" + active + "/connection", body: `{}`, status: 400, code: calld.EINVALID},
		{name: "connection not numeric", method: "POST", path: "/v1/calls/" + active + "/connection", body: `{"connection_id":"x1"}`, status: 400, code: calld.EINVALID},
		{name: "login state", method: "POST", path: "/v1/login", status: 200, contains: []string{`"state":"phone_needed"`}},
		{name: "login phone", method: "POST", path: "/v1/login", body: `{"phone":"+1555000089"}`, status: 200, contains: []string{`"state":"code_sent"`, `"phone":"+1******89"`}},
		{name: "login two fields", method: "POST", path: "/v1/login", body: `{"phone":"+1","code":"1"}`, status: 400, code: calld.EINVALID},
		{name: "login out of order", method: "POST", path: "/v1/login", body: `{"code":"1"}`, status: 409, code: calld.ECONFLICT},
		{name: "events journal error", method: "GET", path: "/v1/events?since=0", status: 503, code: calld.EUNAVAILABLE},
		{name: "events bad since", method: "GET", path: "/v1/events?since=-1", status: 400, code: calld.EINVALID},
		{name: "events bad follow", method: "GET", path: "/v1/events?follow=perhaps", status: 400, code: calld.EINVALID},
		{name: "unknown route", method: "GET", path: "/v1/nope", status: 404, code: calld.ENOTFOUND},
		{name: "root", method: "GET", path: "/", status: 404, code: calld.ENOTFOUND},
		{name: "non-canonical path", method: "GET", path: "/v1//status", status: 404, code: calld.ENOTFOUND, contains: []string{"/v1/status"}},
		{name: "wrong method", method: "POST", path: "/v1/status", status: 405, code: calld.EINVALID,
			check: func(t *testing.T, _ *testEnv, hdr http.Header, _ string) {
				if !strings.Contains(hdr.Get("Allow"), "GET") {
					t.Errorf("Allow %q", hdr.Get("Allow"))
				}
			}},
		{name: "wrong method on call", method: "DELETE", path: "/v1/calls/" + ringing, status: 405, code: calld.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := start(t, Options{}, 0)
			env.svc.panicStatus = tt.name == "status panic is 500 JSON"
			if tt.name == "events journal error" {
				env.svc.journalErr = calld.Errorf(calld.EUNAVAILABLE, "the store is closed")
			}
			status, hdr, body := env.do(t, tt.method, tt.path, tt.body)
			if tt.code != "" {
				wantError(t, status, hdr, body, tt.status, tt.code)
			} else {
				if status != tt.status {
					t.Fatalf("status %d, want %d: %s", status, tt.status, body)
				}
				if ct := hdr.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if !json.Valid([]byte(body)) {
					t.Errorf("invalid JSON %q", body)
				}
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %s:\n%s", s, body)
				}
			}
			if tt.check != nil {
				tt.check(t, env, hdr, body)
			}
		})
	}
}

func TestPeerCredentials(t *testing.T) {
	const daemonUID, allowed, stranger = 4321, 1000, 5555
	ringing := strconv.FormatInt(idRinging, 10)
	active := strconv.FormatInt(idActive, 10)
	secret := []struct{ method, path, body string }{
		{"POST", "/v1/calls/" + ringing + "/accept", ""},
		{"POST", "/v1/calls", `{"peer":"@bob"}`},
		{"POST", "/v1/calls/" + ringing + "/discard", `{"reason":"busy"}`},
		{"GET", "/v1/calls/" + active + "/media", ""},
		{"POST", "/v1/calls/" + active + "/connection", `{"connection_id":"55"}`},
		{"POST", "/v1/login", `{}`},
	}
	open := []struct{ method, path string }{
		{"GET", "/v1/status"}, {"GET", "/v1/health"}, {"GET", "/v1/calls?all=1"}, {"GET", "/v1/calls/" + ringing}, {"GET", "/v1/events?since=0&follow=0"},
	}
	tests := []struct {
		name    string
		cred    func(*testing.T) func(net.Conn) (Cred, error)
		allowed bool
	}{
		{"root", func(t *testing.T) func(net.Conn) (Cred, error) { return uidAs(t, 0) }, true},
		{"daemon uid", func(t *testing.T) func(net.Conn) (Cred, error) { return uidAs(t, daemonUID) }, true},
		{"allow_uids", func(t *testing.T) func(net.Conn) (Cred, error) { return uidAs(t, allowed) }, true},
		{"stranger", func(t *testing.T) func(net.Conn) (Cred, error) { return uidAs(t, stranger) }, false},
		{"no credentials", func(*testing.T) func(net.Conn) (Cred, error) { return credError }, false},
		{"real SO_PEERCRED", func(*testing.T) func(net.Conn) (Cred, error) { return nil }, true}, // the test runs as root or as the daemon uid's default (os.Getuid)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{DaemonUID: daemonUID, AllowUIDs: []int{allowed, 3}, Cred: tt.cred(t)}
			if tt.name == "real SO_PEERCRED" {
				opts.DaemonUID = 0 // os.Getuid()
			}
			env := start(t, opts, 0)
			for _, r := range secret {
				status, hdr, body := env.do(t, r.method, r.path, r.body)
				if tt.allowed {
					if status/100 != 2 {
						t.Errorf("%s %s: status %d, want success: %s", r.method, r.path, status, body)
					}
					continue
				}
				wantError(t, status, hdr, body, 403, calld.EFORBIDDEN)
			}
			if !tt.allowed {
				// Nothing changed behind a forbidden request.
				if c, _ := env.svc.Call(context.Background(), idRinging); c.State != calld.StateRinging {
					t.Errorf("forbidden requests changed the call: %s", c.State)
				}
				if n, _ := env.svc.Calls(context.Background(), true); len(n) != 3 {
					t.Errorf("forbidden place created a call: %d calls", len(n))
				}
			}
			for _, r := range open {
				if status, _, body := env.do(t, r.method, r.path, ""); status != 200 {
					t.Errorf("%s %s: status %d, want 200 for anyone: %s", r.method, r.path, status, body)
				}
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"under the limit", `{"peer":"@` + strings.Repeat("a", 40) + `"}`, 201},
		{"over the limit", `{"peer":"@` + strings.Repeat("a", 70) + `"}`, 413},
		{"far over the limit", `{"peer":"@` + strings.Repeat("a", 1<<20) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := start(t, Options{BodyLimit: 64}, 0)
			status, hdr, body := env.do(t, "POST", "/v1/calls", tt.body)
			if tt.status == 413 {
				wantError(t, status, hdr, body, 413, calld.EINVALID)
				return
			}
			if status != tt.status {
				t.Errorf("status %d, want %d: %s", status, tt.status, body)
			}
		})
	}
}

// readLines reads NDJSON lines until n lines or EOF.
func readLines(t *testing.T, br *bufio.Reader, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(line, "\n"))
	}
	return out
}

func seqsOf(t *testing.T, lines []string) []uint64 {
	t.Helper()
	var out []uint64
	for _, l := range lines {
		out = append(out, decode[calld.Event](t, l).Seq)
	}
	return out
}

func TestEventsReplayThenLive(t *testing.T) {
	env := start(t, Options{}, 16)
	// While the journal is replayed, the daemon commits and publishes
	// event 6: it must arrive exactly once, whichever way.
	env.svc.duringReplay = func(seq uint64) {
		if seq == 4 {
			env.svc.emit(idRinging, "ringing", "accepting")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://calld/v1/events?since=2", nil)
	resp, err := env.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	first := readLines(t, br, 4) // 3, 4, 5, 6
	if strings.Contains(first[0], "+01:00") || !strings.Contains(first[0], `"at":"2024-05-01T10:00:03.123456789Z"`) {
		t.Errorf("event time not RFC 3339 UTC: %s", first[0])
	}
	if !strings.Contains(first[0], `"call_id":"9007199254740993"`) {
		t.Errorf("call_id not an exact string: %s", first[0])
	}
	// The subscription exists (it was made before the replay): a stale
	// duplicate is skipped, new events follow.
	env.hub.Publish(calld.Event{Seq: 5, Event: "call.state"})
	env.svc.emit(idRinging, "accepting", "exchanging_keys") // 7
	env.svc.emit(idRinging, "exchanging_keys", "active")    // 8
	rest := readLines(t, br, 2)
	got := seqsOf(t, append(first, rest...))
	want := []uint64{3, 4, 5, 6, 7, 8}
	if !slicesEqual(got, want) {
		t.Errorf("seqs %v, want %v", got, want)
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEventsModes(t *testing.T) {
	tests := []struct {
		name, query string
		want        []uint64
	}{
		{"replay all and end", "?follow=0", []uint64{1, 2, 3, 4, 5}},
		{"replay since and end", "?since=3&follow=0", []uint64{4, 5}},
		{"replay from the last seq", "?since=5&follow=false", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := start(t, Options{}, 0)
			status, hdr, body := env.do(t, "GET", "/v1/events"+tt.query, "")
			if status != 200 || hdr.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d %q: %s", status, hdr.Get("Content-Type"), body)
			}
			lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
			if body == "" {
				lines = nil
			}
			if got := seqsOf(t, lines); !slicesEqual(got, tt.want) {
				t.Errorf("seqs %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("live only", func(t *testing.T) {
		env := start(t, Options{}, 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://calld/v1/events", nil)
		resp, err := env.http.Do(req) // returns once subscribed (headers are sent after Subscribe)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		env.svc.emit(idActive, "active", "hanging_up") // 6
		if got := seqsOf(t, readLines(t, bufio.NewReader(resp.Body), 1)); !slicesEqual(got, []uint64{6}) {
			t.Errorf("live seqs %v, want [6] (no replay without since)", got)
		}
	})
}

// TestEventsSinceAhead: since beyond the last seq is answered 400 before
// any stream starts, whether or not the client follows.
func TestEventsSinceAhead(t *testing.T) {
	env := start(t, Options{}, 0)
	for _, q := range []string{"?since=9&follow=false", "?since=6", "?since=18446744073709551615"} {
		status, hdr, body := env.do(t, "GET", "/v1/events"+q, "")
		wantError(t, status, hdr, body, 400, calld.EINVALID)
		if !strings.Contains(body, "the last event's seq is 5") {
			t.Errorf("%s: %s does not name the last seq", q, body)
		}
	}
}

func TestEventsSlowReaderDropped(t *testing.T) {
	const buffer = 4
	env := start(t, Options{}, buffer)
	other := env.hub.Subscribe() // a reader that keeps up
	defer other.Close()
	var otherGot uint64

	resp, err := env.http.Get("http://calld/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if env.hub.Len() != 2 {
		t.Fatalf("%d subscribers, want 2", env.hub.Len())
	}
	// Never read the stream: the handler blocks on the full socket, its
	// buffer fills, and the hub drops it. Publish must never block.
	var seq uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for env.hub.Len() == 2 && seq < 1_000_000 {
			seq++
			env.hub.Publish(calld.Event{Seq: seq, Event: "call.state", CallID: 1})
			for len(other.C) > 0 {
				otherGot = (<-other.C).Seq
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	if env.hub.Len() != 1 {
		t.Fatalf("slow subscriber not dropped after %d events", seq)
	}
	if otherGot != seq {
		t.Errorf("the reader that keeps up got up to %d of %d", otherGot, seq)
	}
	// Now read: a contiguous prefix 1..k, then the final error line.
	sc := bufio.NewScanner(resp.Body)
	var last uint64
	var final string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `{"error"`) {
			final = line
			break
		}
		ev := decode[calld.Event](t, line)
		if ev.Seq != last+1 {
			t.Fatalf("gap: %d after %d", ev.Seq, last)
		}
		last = ev.Seq
	}
	if last == 0 || last >= seq {
		t.Errorf("delivered up to %d of %d", last, seq)
	}
	eb := decode[calld.ErrorBody](t, final)
	if eb.Error.Code != calld.CodeSlowReader || !strings.Contains(eb.Error.Message, "since="+strconv.FormatUint(last, 10)) {
		t.Errorf("final line %q, want slow_reader with since=%d", final, last)
	}
	if sc.Scan() {
		t.Errorf("data after the final line: %q", sc.Text())
	}
}

func TestShutdown(t *testing.T) {
	env := start(t, Options{}, 0)
	env.svc.discardGate = make(chan struct{})
	env.svc.discardEnter = make(chan struct{})

	// An open live stream.
	stream, err := env.http.Get("http://calld/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()

	// An in-flight discard, blocked in the service.
	type result struct {
		status int
		body   string
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://calld/v1/calls/"+strconv.FormatInt(idRinging, 10)+"/discard", nil)
		resp, err := env.http.Do(req)
		if err != nil {
			inflight <- result{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inflight <- result{resp.StatusCode, string(b)}
	}()
	<-env.svc.discardEnter

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- env.srv.Shutdown(ctx)
	}()
	// The stream ends without waiting for the in-flight request.
	if _, err := io.ReadAll(stream.Body); err != nil {
		t.Errorf("stream did not end cleanly: %v", err)
	}
	close(env.svc.discardGate)
	r := <-inflight
	if r.status != 200 || !strings.Contains(r.body, `"state":"ended"`) {
		t.Errorf("in-flight discard: %d %s", r.status, r.body)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	// New connections are refused.
	if _, err := env.client.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("after shutdown: %v", err)
	}
}

func TestListen(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{"fresh", func(*testing.T, string) {}, ""},
		{"stale socket", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
		}, ""},
		{"live socket of another process", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}, "another process is listening"},
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a socket but a regular file"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "not a socket but a directory"},
		{"symlink to a socket", func(t *testing.T, path string) {
			target := path + ".real"
			l, err := net.Listen("unix", target)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "not a socket but a symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir() + "/c.sock"
			tt.prepare(t, path)
			before, _ := os.Lstat(path)
			l, err := Listen(path, 0o660)
			if tt.wantErr != "" {
				if err == nil {
					l.Close()
					t.Fatal("Listen succeeded")
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q, want %q and the path", err, tt.wantErr)
				}
				after, err := os.Lstat(path)
				if err != nil || after.Mode() != before.Mode() || after.ModTime() != before.ModTime() || !os.SameFile(before, after) {
					t.Errorf("the refused file was touched: %v", err)
				}
				if after.Mode().Type() == os.ModeSocket {
					c, err := net.Dial("unix", path)
					if err != nil {
						t.Fatalf("the other process's socket no longer answers: %v", err)
					}
					c.Close()
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
				t.Errorf("mode %v, want a socket with 0660", fi.Mode())
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.Close()
		})
	}
}

// TestListenMissingDirectory: a socket path whose directory is missing is
// refused with an error naming the directory, and nothing is created.
func TestListenMissingDirectory(t *testing.T) {
	dir := t.TempDir() + "/missing"
	path := dir + "/c.sock"
	l, err := Listen(path, 0o600)
	if err == nil {
		l.Close()
		t.Fatal("Listen succeeded")
	}
	if !strings.Contains(err.Error(), "directory "+dir+" does not exist") {
		t.Errorf("error %q, want it to name the missing directory %s", err, dir)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory was created: %v", err)
	}
}

// TestListenCloseKeepsAReplacedSocket: closing our listener removes the
// socket file only while it is still the one we created.
func TestListenCloseKeepsAReplacedSocket(t *testing.T) {
	tests := []struct {
		name    string
		replace bool
	}{
		{"ours", false},
		{"replaced by another process", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir() + "/c.sock"
			l, err := Listen(path, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			var other net.Listener
			if tt.replace {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				if other, err = net.Listen("unix", path); err != nil {
					t.Fatal(err)
				}
				defer other.Close()
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = os.Lstat(path)
			switch {
			case !tt.replace && !errors.Is(err, os.ErrNotExist):
				t.Errorf("our socket file is left behind: %v", err)
			case tt.replace && err != nil:
				t.Errorf("the other process's socket file was removed: %v", err)
			case tt.replace:
				c, err := net.Dial("unix", path)
				if err != nil {
					t.Fatalf("the other process's socket no longer answers: %v", err)
				}
				c.Close()
			}
		})
	}
}

func TestStatusCode(t *testing.T) {
	tests := map[string]int{
		calld.EINVALID: 400, calld.EUNAUTHORIZED: 401, calld.EFORBIDDEN: 403, calld.ENOTFOUND: 404,
		calld.ECONFLICT: 409, calld.EUNAVAILABLE: 503, calld.ETIMEOUT: 504, calld.EINTERNAL: 500,
		"CALL_PEER_INVALID": 502, "FLOOD_WAIT": 502, "CALL_ALREADY_ACCEPTED": 502,
	}
	for code, want := range tests {
		if got := StatusCode(code); got != want {
			t.Errorf("StatusCode(%q) = %d, want %d", code, got, want)
		}
	}
	// A plain error is internal.
	env := start(t, Options{}, 0)
	env.svc.journalErr = errors.New("disk on fire")
	status, hdr, body := env.do(t, "GET", "/v1/events?follow=0", "")
	wantError(t, status, hdr, body, 500, calld.EINTERNAL)
	if !strings.Contains(body, "disk on fire") {
		t.Errorf("message lost: %s", body)
	}
}
