package client_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calld/calld/client"
)

// The client's calls against the real server are tested in
// internal/control (client_test.go, signaling_test.go).

func TestClientNotRunning(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "absent.sock")
	_, err := client.New(socket).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not running at "+socket) {
		t.Errorf("error %v, want it to say the daemon is not running at %s", err, socket)
	}
}
