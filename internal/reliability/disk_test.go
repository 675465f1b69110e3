package reliability

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/bench"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/store"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends. It skips the test where mounting is not allowed
// (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int) string {
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+itoa(size)); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root/CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) string {
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	// The last partial chunk may have left a few bytes: fill those too.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	return path
}

// TestDiskFull puts the state file on a small tmpfs, fills the
// filesystem while calls arrive, and checks that: the commit error is
// logged (store.error), the daemon stays up and keeps answering reads,
// the blocked step is not published before it is durable, and
// once space is freed the retried commit goes through, every call ends
// and the file reopens clean.
func TestDiskFull(t *testing.T) {
	disk := mountTmpfs(t, 16<<20)
	srv := bench.NewSim(t)
	cfg := bench.Config(t.TempDir())
	cfg.State.Path = filepath.Join(disk, "calld.db")
	cfg.Policy.Incoming = config.IncomingReject
	e := startEnv(t, srv, cfg)
	ctx := testCtx(t, 3*time.Minute)

	// Some traffic first, so the file has content.
	res, err := e.load(ctx, 8, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	filler := fill(t, disk)
	before := e.tr.LastSeq()

	// Calls keep arriving; the journal grows until a commit needs a page
	// the full filesystem cannot give.
	var ids []int64
	err = eventually(ctx, "a failing commit logged", func() (bool, error) {
		if e.logs.Contains(`"event":"` + logging.EventStoreError + `"`) {
			return true, nil
		}
		id, err := e.sim.IncomingCall(e.peers[0], false)
		if err != nil {
			return false, err
		}
		ids = append(ids, id)
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the first failed commit came after %d more calls; journal seq %d before filling", len(ids), before)

	// The daemon is up: reads answer from the last committed state.
	st, err := e.d.Client.Status(ctx)
	if err != nil {
		t.Fatalf("status while the disk is full: %v", err)
	}
	if !st.Ready {
		t.Fatal("daemon not ready while the disk is full")
	}
	// The step that failed is not published: the last call is not ended.
	last := ids[len(ids)-1]
	if e.tr.Reached(last, calld.StateEnded) {
		t.Fatalf("call %d ended while its commit fails", last)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := e.tr.WaitState(ctx, id, calld.StateEnded); err != nil {
			t.Fatalf("after freeing space: %v", err)
		}
	}
	for _, id := range ids {
		res.ids.Store(id, kindDiscard)
	}
	rep := e.checkConsistent(ctx, res)
	failures := strings.Count(e.logs.Lines(logging.EventStoreError), "\n")
	t.Logf("journal %d events, %d calls ended; %d store.error lines (commit retries)", rep.Events, rep.Ended, failures)

	// Nothing half-written: the file passes the full validation (Open
	// after the clean stop checks only its checksum) and reopens.
	if err := e.d.Stop(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	if err := store.Verify(cfg.State.Path, 0); err != nil {
		t.Fatalf("validation after the disk was full: %v", err)
	}
	db, err := store.Open(cfg.State.Path, store.Options{})
	if err != nil {
		t.Fatalf("reopen after the disk was full: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
