package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/sim"
)

// TestEventsFollowAcrossRestart (CONTRACT §5.3): `calld events --follow`
// outlives a restart of the daemon: it reconnects with since = the last
// seq it printed, so the seqs it prints run on without gap or repeat,
// and it ends with exit status 0 when interrupted.
func TestEventsFollowAcrossRestart(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()
	// --since 0: the journal from its start, then live events, so that
	// no event is missed while the command connects.
	cmd := exec.Command(binary, "events", "--follow", "--since", "0", "--json")
	cmd.Env = append(os.Environ(), "CALLD_SOCKET="+e.socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	events := make(chan calld.Event, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev calld.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("line %q: %v", sc.Text(), err)
			}
			events <- ev
		}
		close(events)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	var last uint64
	// waitFor reads events up to one of call id's, checking that the
	// seqs run on by one.
	waitFor := func(id int64) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("events --follow ended; stderr:\n%s", stderr.String())
				}
				if ev.Seq != last+1 {
					t.Fatalf("seq %d after %d: a gap or a repeat", ev.Seq, last)
				}
				last = ev.Seq
				if ev.CallID == id {
					return
				}
			case <-timeout:
				t.Fatalf("no event of call %d; stderr:\n%s", id, stderr.String())
			}
		}
	}
	first, err := e.srv.IncomingCall(e.srv.AddPeer("carol"), false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(first)

	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("calld serve exit %d", code)
	}
	e.start()
	second, err := e.srv.IncomingCall(e.srv.AddPeer("dave"), false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(second)

	_ = cmd.Process.Signal(syscall.SIGINT)
	for range events {
	}
	if err := <-exited; err != nil {
		t.Errorf("events --follow after SIGINT: %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "reconnecting") {
		t.Errorf("stderr does not say it reconnects:\n%s", stderr.String())
	}
}
