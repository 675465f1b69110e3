package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/config"
)

// The config's defaults are the server's.
func TestLimitDefaultsMatchConfig(t *testing.T) {
	c := config.Default().Control
	if c.MaxConnections != DefaultMaxConnections || c.MaxConnectionsPerUID != DefaultMaxConnectionsPerUID ||
		c.IdleTimeout.Duration != DefaultIdleTimeout {
		t.Errorf("config [control] defaults %+v differ from control's %d, %d, %v",
			c, DefaultMaxConnections, DefaultMaxConnectionsPerUID, DefaultIdleTimeout)
	}
}

// uidQueue hands out peer uids to new connections in accept order (which
// is dial order): the real SO_PEERCRED is read and checked, the uid
// replaced.
type uidQueue struct {
	t   *testing.T
	mu  sync.Mutex
	ids []int
}

func (q *uidQueue) next(uid int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, uid)
}

func (q *uidQueue) cred(c net.Conn) (Cred, error) {
	cred, err := uidAs(q.t, 0)(c)
	if err != nil {
		return cred, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ids) == 0 {
		q.t.Errorf("a connection no test dialled")
		return cred, errors.New("unexpected connection")
	}
	cred.UID, q.ids = q.ids[0], q.ids[1:]
	return cred, nil
}

// rawGet dials the socket as uid, sends one GET and returns the
// connection (kept open) and the response with its body read.
func (e *testEnv) rawGet(t *testing.T, q *uidQueue, uid int, path string) (net.Conn, *http.Response, string) {
	t.Helper()
	q.next(uid)
	c, err := net.Dial("unix", e.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: calld\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("uid %d GET %s: %v", uid, path, err)
	}
	if resp.Header.Get("Content-Type") == "application/x-ndjson" {
		return c, resp, "" // a stream: leave it open
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp, string(b)
}

// TestConnectionCaps: one uid cannot hold more than MaxConnectionsPerUID
// connections, all unprivileged uids together not more than
// MaxConnections minus the reserve, and root is still answered from the
// reserve. Event streams count.
func TestConnectionCaps(t *testing.T) {
	q := &uidQueue{t: t}
	env := start(t, Options{Cred: q.cred, MaxConnections: 8, MaxConnectionsPerUID: 3, DaemonUID: 999}, 0)
	if Reserved(8) != 1 {
		t.Fatalf("Reserved(8) = %d", Reserved(8))
	}
	steps := []struct {
		uid     int
		path    string
		status  int
		message string
	}{
		{1000, "/v1/status", 200, ""},
		{1000, "/v1/events", 200, ""},
		{1000, "/v1/calls", 200, ""},
		{1000, "/v1/status", 503, "max_connections_per_uid = 3"},
		{1001, "/v1/status", 200, ""},
		{1001, "/v1/status", 200, ""},
		{1001, "/v1/events", 200, ""},
		{1002, "/v1/status", 200, ""}, // 7 open: the unprivileged share is full
		{1003, "/v1/status", 503, "max_connections = 8"},
		{0, "/v1/status", 200, ""}, // root gets the reserved one
		{0, "/v1/status", 503, "max_connections = 8"},
	}
	for i, st := range steps {
		_, resp, body := env.rawGet(t, q, st.uid, st.path)
		if resp.StatusCode != st.status {
			t.Fatalf("step %d (uid %d %s): status %d, want %d: %s", i, st.uid, st.path, resp.StatusCode, st.status, body)
		}
		if st.status == 200 {
			continue
		}
		wantError(t, resp.StatusCode, resp.Header, body, 503, calld.EUNAVAILABLE)
		if !strings.Contains(body, st.message) {
			t.Errorf("step %d: message %s, want it to name %q", i, body, st.message)
		}
		if !resp.Close {
			t.Errorf("step %d: a refusal must close the connection", i)
		}
	}
}

// TestConnectionCapsPrivileged: root and the daemon's uid are not held to
// the per-uid cap (only to the global one), which stops unprivileged
// users from starving each other.
func TestConnectionCapsPrivileged(t *testing.T) {
	q := &uidQueue{t: t}
	env := start(t, Options{Cred: q.cred, MaxConnections: 8, MaxConnectionsPerUID: 2, DaemonUID: 999}, 0)
	for i, uid := range []int{0, 0, 0, 999, 999, 999} {
		if _, resp, body := env.rawGet(t, q, uid, "/v1/status"); resp.StatusCode != 200 {
			t.Fatalf("connection %d of uid %d: %d: %s", i, uid, resp.StatusCode, body)
		}
	}
}

// TestConnectionCapsDaemonUID: the daemon's own uid shares root's reserve.
func TestConnectionCapsDaemonUID(t *testing.T) {
	q := &uidQueue{t: t}
	env := start(t, Options{Cred: q.cred, MaxConnections: 2, MaxConnectionsPerUID: 2, DaemonUID: 999}, 0)
	for _, st := range []struct{ uid, status int }{{1000, 200}, {1000, 503}, {999, 200}} {
		if _, resp, body := env.rawGet(t, q, st.uid, "/v1/status"); resp.StatusCode != st.status {
			t.Fatalf("uid %d: %d, want %d: %s", st.uid, resp.StatusCode, st.status, body)
		}
	}
}

// TestIdleTimeout: a keep-alive connection idle past IdleTimeout is
// closed, and its slot is given back.
func TestIdleTimeout(t *testing.T) {
	q := &uidQueue{t: t}
	env := start(t, Options{Cred: q.cred, MaxConnections: 4, MaxConnectionsPerUID: 1, IdleTimeout: 50 * time.Millisecond}, 0)
	c, resp, body := env.rawGet(t, q, 1000, "/v1/status")
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("%d close=%v: %s", resp.StatusCode, resp.Close, body)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want EOF (closed by the idle timeout)", n, err)
	}
}

// resourceFailListener fails its first n accepts with EMFILE.
type resourceFailListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *resourceFailListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestAcceptBackoff: accept failing with EMFILE is waited out and logged
// once when it starts and once when it passes, not once per failure.
func TestAcceptBackoff(t *testing.T) {
	logs := &lockedBuffer{}
	hub := NewHub(0)
	srv := NewServer(newMemService(hub), hub, Options{Log: zerolog.New(logs)})
	socket := t.TempDir() + "/c.sock"
	l, err := Listen(socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(&resourceFailListener{Listener: l, n: 4}) }()
	cl := client.New(socket)
	defer cl.Close()
	if _, err := cl.Status(t.Context()); err != nil {
		t.Fatalf("status after the accept errors: %v", err)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && (m["event"] == "control.accept" || m["event"] == "control.http_error") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "too many open files") || !strings.Contains(lines[1], `"failures":4`) {
		t.Errorf("accept log lines:\n%s\nwant one when failing starts and one when it passes; all logs:\n%s", strings.Join(lines, "\n"), logs.String())
	}
}

// TestProtocolErrorsAreJSON: net/http's own answers to requests it cannot
// parse (400, 431, 505, 501) carry the JSON error shape with code
// "invalid", not text/plain.
func TestProtocolErrorsAreJSON(t *testing.T) {
	env := start(t, Options{MaxHeaderBytes: 1024}, 0)
	tests := []struct {
		name   string
		raw    string
		status int
		msg    string
	}{
		{"garbage request line", "GARBAGE\r\n\r\n", 400, "malformed HTTP request"},
		{"bad version", "GET /v1/status HTTP/9.9\r\nHost: calld\r\n\r\n", 505, "unsupported protocol version"},
		{"no host", "GET /v1/status HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"header too large", "GET /v1/status HTTP/1.1\r\nHost: calld\r\nX: " + strings.Repeat("a", 8192) + "\r\n\r\n", 431, "Request Header Fields Too Large"},
		{"bad transfer encoding", "POST /v1/login HTTP/1.1\r\nHost: calld\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", env.socket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tt.raw); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, resp.StatusCode, resp.Header, string(b), tt.status, calld.EINVALID)
			if !strings.Contains(strings.ToLower(string(b)), strings.ToLower(tt.msg)) {
				t.Errorf("message %s, want it to say %q", b, tt.msg)
			}
		})
	}
}

// TestFitFileLimit: the connection cap is lowered below a soft
// RLIMIT_NOFILE too low to hold it, keeping descriptors for the rest of
// the daemon (so that the reserve for root stays usable).
func TestFitFileLimit(t *testing.T) {
	tests := []struct {
		max  int
		soft uint64
		want int
	}{
		{1024, 524288, 1024},
		{1024, 1024 + fdMargin, 1024},
		{1024, 1024, 1024 - fdMargin},
		{1024, 256, 256 - fdMargin},
		{1024, fdMargin, 2},
		{1024, 0, 2},
		{1024, ^uint64(0), 1024}, // RLIM_INFINITY
	}
	for _, tt := range tests {
		if got := fitFileLimit(tt.max, tt.soft); got != tt.want {
			t.Errorf("fitFileLimit(%d, %d) = %d, want %d", tt.max, tt.soft, got, tt.want)
		}
	}
}

// TestConnectionSlotReleased: the slot of a connection the client closes
// (idle keep-alive, or an event stream) is given back: with a per-uid cap
// of 1, the same uid connects again.
func TestConnectionSlotReleased(t *testing.T) {
	for _, path := range []string{"/v1/status", "/v1/events"} {
		t.Run(path, func(t *testing.T) {
			q := &uidQueue{t: t}
			env := start(t, Options{Cred: q.cred, MaxConnections: 8, MaxConnectionsPerUID: 1}, 0)
			c, resp, body := env.rawGet(t, q, 1000, path)
			if resp.StatusCode != 200 {
				t.Fatalf("first: %d: %s", resp.StatusCode, body)
			}
			if _, resp, _ := env.rawGet(t, q, 1000, "/v1/status"); resp.StatusCode != 503 {
				t.Fatalf("second while the first is open: %d, want 503", resp.StatusCode)
			}
			c.Close()
			// The server notices the close on its own time: retry (each
			// refusal is answered at once) until the slot is back.
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, resp, body := env.rawGet(t, q, 1000, "/v1/status")
				if resp.StatusCode == 200 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("slot not released 10 s after the client closed: %d: %s", resp.StatusCode, body)
				}
			}
		})
	}
}

// TestIdleTimeoutSparesEventStreams: the idle timeout closes idle
// keep-alive connections, never a /v1/events stream waiting for events.
func TestIdleTimeoutSparesEventStreams(t *testing.T) {
	q := &uidQueue{t: t}
	env := start(t, Options{Cred: q.cred, IdleTimeout: 50 * time.Millisecond}, 0)
	stream, events, _ := env.rawGet(t, q, 1000, "/v1/events")
	if events.StatusCode != 200 {
		t.Fatalf("events: %d", events.StatusCode)
	}
	// An idle keep-alive connection opened after the stream is closed by
	// the idle timeout: by then the stream has been idle longer.
	idle, resp, body := env.rawGet(t, q, 1000, "/v1/status")
	if resp.StatusCode != 200 {
		t.Fatalf("status: %d: %s", resp.StatusCode, body)
	}
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want EOF", n, err)
	}
	env.hub.Publish(calld.Event{Seq: 1, Event: "call.state"})
	_ = stream.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(events.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"seq":1`) {
		t.Fatalf("event stream cut by the idle timeout: %q, %v", line, err)
	}
}
