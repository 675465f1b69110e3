package control

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSlowBodyCutOff: a client that sends its headers and then trickles
// the body is answered (400, invalid) once BodyTimeout has passed, and a
// request whose body arrives in time is served even though its handling
// happens after that deadline would have passed.
func TestSlowBodyCutOff(t *testing.T) {
	const timeout = 300 * time.Millisecond
	env := start(t, Options{BodyTimeout: timeout}, 16)
	conn, err := net.Dial("unix", env.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("POST /v1/calls HTTP/1.1\r\nHost: calld\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	took := time.Since(start)
	if resp.StatusCode != http.StatusBadRequest || took < timeout {
		t.Fatalf("status %d after %s; want 400 after at least %s", resp.StatusCode, took, timeout)
	}

	// A normal request on the same server still works.
	res, err := env.http.Post("http://calld/v1/calls", "application/json", strings.NewReader(`{"peer":"@alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("normal request after a cut-off one: %d", res.StatusCode)
	}
}
