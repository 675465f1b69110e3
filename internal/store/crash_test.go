package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calld/calld"
)

// The crash helper: when the test binary is started with crashEnv set to
// a file path, it appends transitions to that file forever from several
// goroutines with Update, printing "seq call"
// once each is committed, until it is killed.
const crashEnv = "CALLD_STORE_CRASH_HELPER"

func crashHelper(path string) int {
	if p, ok := strings.CutPrefix(path, "log:"); ok {
		return logCrashHelper(p)
	}
	db, err := Open(path, Options{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := db.Update
			for k := 0; ; k++ {
				id := int64(w+1)*1_000_000 + int64(k%7)
				var seq uint64
				if err := run(func(tx *Tx) error {
					var err error
					seq, err = transition(tx, id, "active", k%3 != 0)
					return err
				}); err != nil {
					fmt.Fprintln(os.Stderr, "helper:", err)
					os.Exit(3)
				}
				out.Lock()
				// One write per line: a line is either whole or absent.
				os.Stdout.WriteString(fmt.Sprintf("%d %d\n", seq, id))
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestCrashKeepsCommitted runs the helper, SIGKILLs it after it reported
// some commits, reopens the file and checks that every reported commit is
// there, the journal is gap-free, each call record and the updates state
// are those of the last committed transaction that wrote them. Three
// rounds continue on the same file.
func TestCrashKeepsCommitted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	path := tempDB(t)
	reported := map[uint64]int64{}
	for round := 1; round <= 3; round++ {
		kill := runCrashHelper(t, round, path, 150, func(text string) {
			f := strings.Fields(text)
			if len(f) != 2 {
				t.Fatalf("round %d: helper printed %q", round, text)
			}
			seq, err1 := strconv.ParseUint(f[0], 10, 64)
			id, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("round %d: helper printed %q", round, text)
			}
			if prev, dup := reported[seq]; dup {
				t.Fatalf("seq %d reported twice (calls %d and %d)", seq, prev, id)
			}
			reported[seq] = id
		})

		// While the helper holds the file, another process cannot open it.
		if db, err := Open(path, Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
			if db != nil {
				db.Close()
			}
			t.Errorf("round %d: Open while the helper runs: %v, want ErrLocked", round, err)
		}

		kill()

		db := openT(t, path, Options{})
		checkAfterCrash(t, db, reported)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runCrashHelper starts the crash helper (crashEnv=arg), hands each line
// it prints to line until n lines came, and returns kill, which SIGKILLs
// it and waits for it. It fails the test when the helper stops first.
func runCrashHelper(t *testing.T, round int, arg string, n int, line func(text string)) (kill func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+arg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	lines := 0
	for lines < n && sc.Scan() {
		line(sc.Text())
		lines++
	}
	if lines < n {
		cancel()
		t.Fatalf("round %d: helper stopped after %d lines: %v; stderr: %s", round, lines, sc.Err(), stderr.String())
	}
	return func() {
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cancel()
	}
}

func checkAfterCrash(t *testing.T, db *DB, reported map[uint64]int64) {
	t.Helper()
	err := db.View(func(tx *Tx) error {
		last := tx.LastSeq()
		var maxReported uint64
		for s := range reported {
			maxReported = max(maxReported, s)
		}
		if last < maxReported {
			t.Errorf("LastSeq %d < last reported %d", last, maxReported)
		}
		// Gap-free 1..last, holding every reported commit.
		next := uint64(1)
		lastOf := map[int64]uint64{}
		if err := tx.Events(0, func(e calld.Event) error {
			if e.Seq != next {
				return fmt.Errorf("journal gap: seq %d after %d", e.Seq, next-1)
			}
			next++
			if id, ok := reported[e.Seq]; ok && id != e.CallID {
				t.Errorf("seq %d is call %d, the helper reported %d", e.Seq, e.CallID, id)
			}
			lastOf[e.CallID] = e.Seq
			return nil
		}); err != nil {
			return err
		}
		if next-1 != last {
			t.Errorf("journal ends at %d, LastSeq %d", next-1, last)
		}
		// Each record was written with the event of its transaction:
		// it points at its call's last event.
		calls := 0
		if err := tx.ForEachCall(false, func(id int64, rec []byte) error {
			calls++
			r := mustRecord(t, rec)
			if r.Seq != lastOf[id] {
				t.Errorf("call %d record points at seq %d, its last event is %d", id, r.Seq, lastOf[id])
			}
			return nil
		}); err != nil {
			return err
		}
		if calls != len(lastOf) {
			t.Errorf("%d call records, %d calls in the journal", calls, len(lastOf))
		}
		us, ok, err := tx.UpdatesState()
		if err != nil || !ok || us.Pts != int(last) {
			t.Errorf("updates state %+v (%v, %v), want pts = last seq %d", us, ok, err, last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// logCrashHelper logs commits 1, 2, ... (after those the file has) from
// one goroutine, as the manager does, printing each number once its Log
// returned, until it is killed.
func logCrashHelper(path string) int {
	db, err := Open(path, Options{Timeout: 5 * time.Second, Replay: replayCommit})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	var k uint64
	if err := db.View(func(tx *Tx) error {
		if b := tx.tx.Bucket(bTest); b != nil {
			if last, _ := b.Cursor().Last(); last != nil {
				k = binary.BigEndian.Uint64(last)
			}
		}
		return nil
	}); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	for {
		k++
		n := k
		if _, err := db.Log(commitRec(n), func(tx *Tx) error { return putCommit(tx, n) }); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 3
		}
		os.Stdout.WriteString(strconv.FormatUint(n, 10) + "\n")
	}
}

// TestCrashKeepsLogged: the helper logs commits and is SIGKILLed after it
// reported some (and after a checkpoint or more: walMaxFrames); the file
// then holds every reported commit, and commits 1..n without a gap. Three
// rounds continue on the same file.
func TestCrashKeepsLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	path := tempDB(t)
	var reported uint64
	for round := 1; round <= 3; round++ {
		runCrashHelper(t, round, "log:"+path, walMaxFrames+200, func(text string) {
			k, err := strconv.ParseUint(text, 10, 64)
			if err != nil || k != reported+1 {
				t.Fatalf("round %d: helper printed %q after %d", round, text, reported)
			}
			reported = k
		})()

		db := openT(t, path, Options{Replay: replayCommit})
		got := commits(t, db)
		if uint64(len(got)) < reported || !slices.Equal(got, upTo(uint64(len(got)))) {
			t.Fatalf("round %d: the file holds %d commits (gap-free: %v), %d reported", round, len(got), slices.Equal(got, upTo(uint64(len(got)))), reported)
		}
		reported = uint64(len(got)) // the helper goes on after the last one the file has
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
