package control

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

const childEnv = "CALLD_CONTROL_TEST_CHILD_SOCKET"

// childMain runs in a child process with another uid: it reads the status
// (open to anyone) and tries a discard (mutating), and prints the codes.
func childMain(socket string) {
	c := client.New(socket)
	ctx := context.Background()
	_, err := c.Status(ctx)
	status := "ok"
	if err != nil {
		status = calld.ErrorCode(err) + " " + err.Error()
	}
	_, err = c.Discard(ctx, idRinging, "")
	discard := "ok"
	if err != nil {
		discard = calld.ErrorCode(err)
	}
	fmt.Printf("status=%s discard=%s\n", status, discard)
	os.Exit(0)
}

// TestPeerCredRealUID checks SO_PEERCRED end to end with a client process
// that really runs under another uid (needs root to switch uids).
func TestPeerCredRealUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client under another uid")
	}
	const nobody = 65534
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		allow []int
		want  string
	}{
		{"not allowed", nil, "status=ok discard=forbidden"},
		{"in allow_uids", []int{nobody}, "status=ok discard=ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{filepath.Dir(dir), dir} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			bin := filepath.Join(dir, "child.test")
			copyFile(t, self, bin)
			socket := filepath.Join(dir, "c.sock")
			hub := NewHub(0)
			srv := NewServer(newMemService(hub), hub, Options{AllowUIDs: tt.allow})
			l, err := Listen(socket, 0o666)
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(l) }()
			defer func() {
				if err := srv.Shutdown(context.Background()); err != nil {
					t.Error(err)
				}
				<-served
			}()

			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Env = []string{childEnv + "=" + socket}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("child saw %q, want %q", got, tt.want)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
