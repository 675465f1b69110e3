package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/bench"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// buildCalld builds cmd/calld into dir.
func buildCalld(t *testing.T, dir string) string {
	bin := filepath.Join(dir, "calld")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/calld/calld/cmd/calld")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeConfig writes a calld.toml for a daemon process against srv.
func writeConfig(t *testing.T, dir string, srv *sim.Server) (path, socket string) {
	keys := filepath.Join(dir, "keys.pem")
	if err := os.WriteFile(keys, srv.PublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	socket = filepath.Join(dir, "calld.sock")
	conf := fmt.Sprintf(`[telegram]
api_id = 1
api_hash = "x"
dc = %d
public_keys = %q
dc_options = [{id = %d, addr = %q}]

[state]
path = %q

[control]
socket = %q

[log]
format = "json"

[policy]
incoming = "reject"
reject_when_busy = false
ring_timeout = "30m"
`, srv.DC(), keys, srv.DC(), srv.Addr(), filepath.Join(dir, "calld.db"), socket)
	path = filepath.Join(dir, "calld.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, socket
}

// proc is one daemon process.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

func startProc(t *testing.T, bin, conf, logPath string) *proc {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", conf)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	return p
}

// waitReady waits until the daemon process answers status with ready.
func waitReady(ctx context.Context, c *client.Client, p *proc) error {
	return eventually(ctx, "daemon process ready", func() (bool, error) {
		select {
		case err := <-p.done:
			p.done <- err
			return false, fmt.Errorf("daemon exited: %v", err)
		default:
		}
		st, err := c.Status(ctx)
		return err == nil && st.Ready, err
	})
}

// TestKill9 runs `calld serve` as a process against an in-test simulator
// (policy reject: every incoming call is refused), drives incoming calls,
// and SIGKILLs the daemon at a random moment under load, then restarts it
// on the same state file. After every restart, once the traffic is over:
// the journal is complete (gap-free, every chain contiguous, every call
// ended), every call the simulator made is in the store and ended, and
// the updates state equals the simulator's.
func TestKill9(t *testing.T) {
	kills := size(5, 100)
	dir := t.TempDir()
	bin := buildCalld(t, dir)
	srv := bench.NewSim(t)
	peer := srv.AddPeer("killer")
	conf, socket := writeConfig(t, dir, srv)
	logPath := filepath.Join(dir, "calld.log")
	cl := client.New(socket)
	defer cl.Close()
	ctx := testCtx(t, 20*time.Minute)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))

	p := startProc(t, bin, conf, logPath)
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	if err := waitReady(ctx, cl, p); err != nil {
		t.Fatal(err)
	}
	var made atomic.Int64
	var restart []time.Duration
	for k := 0; k < kills; k++ {
		// Traffic: 4 workers making incoming calls as fast as the
		// simulator takes them, until the kill.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := srv.IncomingCall(peer, false); err != nil {
						t.Error(err)
						return
					}
					made.Add(1)
				}
			}()
		}
		// A random moment under load: 20..300 ms in.
		at := time.Duration(20+rng.IntN(280)) * time.Millisecond
		timer := time.NewTimer(at)
		<-timer.C
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		close(stop)
		wg.Wait()

		t0 := time.Now()
		p = startProc(t, bin, conf, logPath)
		if err := waitReady(ctx, cl, p); err != nil {
			t.Fatalf("restart %d: %v\nlog: %s", k+1, err, tail(logPath))
		}
		restart = append(restart, time.Since(t0))
		if err := settled(ctx, cl, srv); err != nil {
			t.Fatalf("after kill %d at %s: %v\nlog: %s", k+1, at, err, tail(logPath))
		}
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for _, d := range restart {
		worst = max(worst, d)
	}
	t.Logf("%d kills; %d incoming calls made, %d calls in the store, all ended; restart to ready max %s",
		kills, made.Load(), st.Calls.Total, worst.Round(time.Millisecond))
}

// settled waits until the daemon is consistent with the simulator: no live
// call, every call of the simulator in the store and ended, the journal
// complete, the updates state equal.
func settled(ctx context.Context, c *client.Client, srv *sim.Server) error {
	var why error
	err := eventually(ctx, "consistent after restart", func() (bool, error) {
		st, err := c.Status(ctx)
		if err != nil {
			return false, err
		}
		pts, qts, seq, _ := srv.State()
		if u := st.Updates; u.Pts != pts || u.Qts != qts || u.Seq != seq {
			return false, fmt.Errorf("calld pts=%d qts=%d seq=%d, sim pts=%d qts=%d seq=%d", u.Pts, u.Qts, u.Seq, pts, qts, seq)
		}
		if st.Calls.Live != 0 {
			return false, fmt.Errorf("%d calls live", st.Calls.Live)
		}
		calls, err := c.Calls(ctx, true)
		if err != nil {
			return false, err
		}
		stored := map[int64]calld.State{}
		for _, rec := range calls {
			stored[rec.ID] = rec.State
		}
		for _, info := range srv.Calls() {
			if s, ok := stored[info.ID]; !ok || s != calld.StateEnded {
				return false, fmt.Errorf("simulator call %d (%s) is %q in the store", info.ID, info.State, s)
			}
		}
		evs, err := journal(ctx, c)
		if err != nil {
			return false, err
		}
		rep, err := CheckJournal(evs)
		if err != nil {
			why = err
			return true, nil // a broken journal does not mend itself
		}
		if len(rep.Live) > 0 || rep.Calls != len(stored) {
			return false, fmt.Errorf("journal: %d calls, %d live; store %d calls", rep.Calls, len(rep.Live), len(stored))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	return why
}

// tail returns the end of the daemon's log.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
