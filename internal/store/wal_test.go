package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// bTest is the bucket the log's tests write their commits into.
var bTest = []byte("wal_test")

// putCommit is what commit k writes: key k -> "commit k".
func putCommit(tx *Tx, k uint64) error {
	b, err := tx.tx.CreateBucketIfNotExists(bTest)
	if err != nil {
		return err
	}
	return b.Put(be64(k), []byte("commit "+strconv.FormatUint(k, 10)))
}

// commitRec is commit k's log record, and replayCommit its Replay.
func commitRec(k uint64) []byte { return be64(k) }

func replayCommit(tx *Tx, rec []byte) error {
	if len(rec) != 8 {
		return fmt.Errorf("record %x is not a commit number", rec)
	}
	return putCommit(tx, binary.BigEndian.Uint64(rec))
}

// logCommit logs commit k.
func logCommit(t testing.TB, db *DB, k uint64) {
	t.Helper()
	if _, err := db.Log(commitRec(k), func(tx *Tx) error { return putCommit(tx, k) }); err != nil {
		t.Fatalf("log commit %d: %v", k, err)
	}
}

// commits returns the commit numbers the bbolt file holds, in order.
func commits(t testing.TB, db *DB) []uint64 {
	t.Helper()
	var ks []uint64
	if err := db.View(func(tx *Tx) error {
		b := tx.tx.Bucket(bTest)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			ks = append(ks, binary.BigEndian.Uint64(k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return ks
}

// crash drops db as a process killed at this point would: nothing more is
// written, neither a checkpoint nor a clean stop.
func crash(t testing.TB, db *DB) {
	t.Helper()
	db.closeMu.Lock()
	db.closed = true
	db.closeMu.Unlock()
	if err := errors.Join(db.wal.f.Close(), db.bolt.Close()); err != nil {
		t.Fatal(err)
	}
}

// commitsAfterCrash crashes db, opens path again with its log replayed,
// and returns the commit numbers the file then holds.
func commitsAfterCrash(t testing.TB, db *DB, path string) []uint64 {
	t.Helper()
	crash(t, db)
	return commits(t, openT(t, path, Options{Replay: replayCommit}))
}

func upTo(n uint64) []uint64 {
	var ks []uint64
	for k := uint64(1); k <= n; k++ {
		ks = append(ks, k)
	}
	return ks
}

// TestLogReplay: every logged commit survives a crash: the next Open puts
// the log's commits into the file with Replay, once (a second crash and
// Open does not apply them again), and refuses to open without Replay.
func TestLogReplay(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{})
	for k := uint64(1); k <= 10; k++ {
		logCommit(t, db, k)
	}
	crash(t, db)

	if db, err := Open(path, Options{}); err == nil {
		db.Close()
		t.Fatal("Open without Replay of a log with commits succeeded")
	}
	replays := 0
	count := func(tx *Tx, rec []byte) error { replays++; return replayCommit(tx, rec) }
	db = openT(t, path, Options{Replay: count})
	if got := commits(t, db); !slices.Equal(got, upTo(10)) || replays != 10 {
		t.Fatalf("after the crash: commits %v (%d replayed), want 1..10", got, replays)
	}
	logCommit(t, db, 11)
	crash(t, db)
	replays = 0
	db = openT(t, path, Options{Replay: count})
	if got := commits(t, db); !slices.Equal(got, upTo(11)) || replays != 1 {
		t.Fatalf("after the second crash: commits %v (%d replayed), want 1..11, one replayed", got, replays)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	replays = 0
	db = openT(t, path, Options{Replay: count})
	defer db.Close()
	if got := commits(t, db); !slices.Equal(got, upTo(11)) || replays != 0 {
		t.Fatalf("after a clean stop: commits %v (%d replayed), want 1..11, none replayed", got, replays)
	}
}

// TestLogVisible: a transaction sees the commits logged before it, and
// one that fails leaves them pending, not lost.
func TestLogVisible(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{Replay: replayCommit})
	logCommit(t, db, 1)
	logCommit(t, db, 2)
	if got := commits(t, db); !slices.Equal(got, upTo(2)) {
		t.Fatalf("View after two logged commits: %v", got)
	}
	logCommit(t, db, 3)
	failed := errors.New("fn fails")
	var seen []byte
	err := db.Update(func(tx *Tx) error {
		seen = tx.tx.Bucket(bTest).Get(be64(3))
		return failed
	})
	if !errors.Is(err, failed) || string(seen) != "commit 3" {
		t.Fatalf("Update that fails: %v, saw %q", err, seen)
	}
	if n := len(db.wal.pending); n != 1 {
		t.Fatalf("after a failed Update: %d commits pending, want 1", n)
	}
	if got := commitsAfterCrash(t, db, path); !slices.Equal(got, upTo(3)) {
		t.Fatalf("after a crash: %v", got)
	}
}

// TestLogTornAndStale: the replay stops at a frame that is not whole (a
// write cut by the crash), and never takes the older frames that follow
// a new one after a checkpoint, or a log beside another state file.
func TestLogTornAndStale(t *testing.T) {
	t.Run("torn", func(t *testing.T) {
		path := tempDB(t)
		db := openT(t, path, Options{})
		for k := uint64(1); k <= 3; k++ {
			logCommit(t, db, k)
		}
		off := db.wal.off
		crash(t, db)
		f, err := os.OpenFile(path+walSuffix, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0xff}, off-1); err != nil { // the third frame's last byte
			t.Fatal(err)
		}
		f.Close()
		db = openT(t, path, Options{Replay: replayCommit})
		defer db.Close()
		if got := commits(t, db); !slices.Equal(got, upTo(2)) {
			t.Fatalf("after a torn third frame: %v, want 1..2", got)
		}
		logCommit(t, db, 3) // its place is taken by the next commit
		if got := commits(t, db); !slices.Equal(got, upTo(3)) {
			t.Fatalf("after logging again: %v", got)
		}
	})
	t.Run("stale", func(t *testing.T) {
		path := tempDB(t)
		db := openT(t, path, Options{})
		for k := uint64(1); k <= 5; k++ {
			logCommit(t, db, k)
		}
		commits(t, db) // a checkpoint: the log starts over
		if db.wal.off != 0 {
			t.Fatalf("after a checkpoint the log goes on at %d", db.wal.off)
		}
		logCommit(t, db, 6)
		crash(t, db)
		replayed := 0
		db = openT(t, path, Options{Replay: func(tx *Tx, rec []byte) error { replayed++; return replayCommit(tx, rec) }})
		defer db.Close()
		if got := commits(t, db); !slices.Equal(got, upTo(6)) || replayed != 1 {
			t.Fatalf("after a crash: %v, %d replayed, want 1..6 with one replayed", got, replayed)
		}
	})
	t.Run("another file's log", func(t *testing.T) {
		dir := t.TempDir()
		other := dir + "/other.db"
		db := openT(t, other, Options{})
		for k := uint64(1); k <= 3; k++ {
			logCommit(t, db, k)
		}
		crash(t, db)
		path := dir + "/calld.db"
		db = openT(t, path, Options{})
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		log, err := os.ReadFile(other + walSuffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+walSuffix, log, 0o600); err != nil {
			t.Fatal(err)
		}
		db = openT(t, path, Options{Replay: replayCommit})
		defer db.Close()
		if got := commits(t, db); len(got) != 0 {
			t.Fatalf("another file's log replayed: %v", got)
		}
	})
}

// TestLogGrowsAndCheckpoints: a commit larger than the log grows it; the
// log is checkpointed once it holds walMaxFrames commits or walMaxBytes,
// and a crash after any number of commits loses none.
func TestLogGrowsAndCheckpoints(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{})
	big := bytes.Repeat([]byte{7}, walGrow+100)
	if _, err := db.Log(big, func(tx *Tx) error { return putCommit(tx, 1) }); err != nil {
		t.Fatal(err)
	}
	if db.wal.size < walGrow+100+walFrameHeader {
		t.Fatalf("log of %d bytes after a commit of %d", db.wal.size, len(big))
	}
	for k := uint64(2); k <= walMaxFrames+5; k++ {
		logCommit(t, db, k)
		if n := len(db.wal.pending); n >= walMaxFrames {
			t.Fatalf("%d commits pending after commit %d", n, k)
		}
	}
	crash(t, db)
	db = openT(t, path, Options{Replay: func(tx *Tx, rec []byte) error {
		if len(rec) == len(big) {
			return putCommit(tx, 1)
		}
		return replayCommit(tx, rec)
	}})
	defer db.Close()
	if got := commits(t, db); !slices.Equal(got, upTo(walMaxFrames+5)) {
		t.Fatalf("after a crash: %d commits, want %d", len(got), walMaxFrames+5)
	}
	st, err := os.Stat(path + walSuffix)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the log: %v (%v), want mode 0600", st.Mode(), err)
	}
}

// FuzzScanFrames: any log reads without a panic, and what it yields are
// whole frames of the file's salt with consecutive seqs; frames written
// by appendFrame, followed by anything, read back as written.
func FuzzScanFrames(f *testing.F) {
	f.Add([]byte{}, []byte("rest"), uint64(1), uint8(3))
	f.Add(appendFrame(nil, 9, 4, []byte("x")), []byte{}, uint64(4), uint8(0))
	f.Fuzz(func(t *testing.T, log, tail []byte, from uint64, n uint8) {
		const salt = 0x5a17
		for _, rec := range scanFrames(log, salt, from) {
			_ = rec // reading random bytes must not panic
		}
		var b []byte
		var want [][]byte
		for i := range uint64(n % 16) {
			rec := bytes.Repeat([]byte{byte(i)}, int(i)*3)
			b = appendFrame(b, salt, from+i, rec)
			want = append(want, rec)
		}
		got := scanFrames(append(b, tail...), salt, from)
		if len(got) < len(want) {
			t.Fatalf("%d frames read back of %d written", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d: %x, want %x", i, got[i], want[i])
			}
		}
	})
}

// TestLogEarlierRun: a log beside a state file restored from a backup
// holds frames of a history the file no longer has; after the restored
// file's own run crashes, none of them is replayed after its frames (each
// run logs with a new salt).
func TestLogEarlierRun(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{Replay: replayCommit})
	logCommit(t, db, 1)
	var backup bytes.Buffer
	if _, err := db.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	for k := uint64(2); k <= 4; k++ {
		logCommit(t, db, k)
	}
	commits(t, db) // a checkpoint: frames 2..4 stay at the log's start
	logCommit(t, db, 5)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, backup.Bytes(), 0o600); err != nil { // restored; the log stays
		t.Fatal(err)
	}
	db = openT(t, path, Options{Replay: replayCommit})
	if got := commits(t, db); !slices.Equal(got, upTo(1)) {
		t.Fatalf("the restored file: %v, want [1]", got)
	}
	logCommit(t, db, 1002) // at the log's start, where frame 2 was
	logCommit(t, db, 1003)
	if got := commitsAfterCrash(t, db, path); !slices.Equal(got, []uint64{1, 1002, 1003}) {
		t.Fatalf("after the restored run's crash: %v, want [1 1002 1003]", got)
	}
}

// TestCheckpointFailedAfterMeta: a checkpoint whose bbolt commit failed
// after it wrote the meta page (the last fdatasync) is in effect in this
// process: settling it takes its commits as done, and the log goes on from
// its start, where the next Open looks for the next commit; a commit
// applied twice is harmless.
func TestCheckpointFailedAfterMeta(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{})
	for k := uint64(1); k <= 3; k++ {
		logCommit(t, db, k)
	}
	w := db.wal
	w.mu.Lock()
	// What the checkpoint's transaction did before bbolt said it failed.
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx, db: db}
		for _, apply := range w.pending {
			if err := apply(tx); err != nil {
				return err
			}
		}
		return btx.Bucket(bMeta).Put(kWalSeq, be64(w.next-1))
	})
	if err == nil {
		err = db.settleLocked(errors.New("fdatasync: input/output error"))
	}
	w.mu.Unlock()
	if err != nil || len(w.pending) != 0 || w.off != 0 {
		t.Fatalf("settled: %v, %d pending, log at %d; want done", err, len(w.pending), w.off)
	}
	logCommit(t, db, 4)
	if got := commitsAfterCrash(t, db, path); !slices.Equal(got, upTo(4)) {
		t.Fatalf("after a crash: %v, want 1..4", got)
	}
}

// TestBackupNeedsCheckpoint: a backup holds every commit logged before
// it, or fails: when the checkpoint cannot be written, it is an error, not
// a copy without the log's commits.
func TestBackupNeedsCheckpoint(t *testing.T) {
	db := openT(t, tempDB(t), Options{})
	defer db.Close()
	logCommit(t, db, 1)
	failing := errors.New("the file cannot take it")
	fail := true
	if _, err := db.Log(commitRec(2), func(tx *Tx) error {
		if fail {
			return failing
		}
		return putCommit(tx, 2)
	}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := db.Backup(&b); !errors.Is(err, failing) {
		t.Fatalf("backup with the checkpoint failing: %v, want its error", err)
	}
	fail = false
	if _, err := db.Backup(&b); err != nil || b.Len() == 0 {
		t.Fatalf("backup: %d bytes, %v", b.Len(), err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyPath, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := openT(t, copyPath, Options{})
	defer cp.Close()
	if got := commits(t, cp); !slices.Equal(got, upTo(2)) {
		t.Fatalf("the backup holds %v, want 1..2", got)
	}
}

// TestLogKeepsNothingOfRec: a caller may reuse rec once Log returned (the
// manager encodes every commit into one buffer): after a crash, each
// commit replays as it was when it was logged.
func TestLogKeepsNothingOfRec(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{})
	rec := make([]byte, 8)
	for k := uint64(1); k <= 5; k++ {
		binary.BigEndian.PutUint64(rec, k)
		if _, err := db.Log(rec, func(tx *Tx) error { return putCommit(tx, k) }); err != nil {
			t.Fatalf("log commit %d: %v", k, err)
		}
	}
	binary.BigEndian.PutUint64(rec, 99)
	if got := commitsAfterCrash(t, db, path); !slices.Equal(got, upTo(5)) {
		t.Fatalf("after the crash: commits %v, want 1..5", got)
	}
}
