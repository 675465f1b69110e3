// Package store owns calld's state file: one bbolt database holding the
// call records, the live-calls index, the event journal (global by seq and
// indexed per call and by time), the account's updates state
// (pts/qts/seq/date) and the MTProto session.
//
// Everything a step of the daemon changes is written in one commit
// (DESIGN invariant 2). The manager's loop, the one writer of calls,
// groups what it handled since its last commit into one commit of the
// commit log (Log, wal.go: one write and one fdatasync of PATH-wal), which
// a checkpoint puts into the bbolt file later, all pending commits in one
// transaction. Update runs one durable bbolt transaction (after a
// checkpoint); View is a read-only transaction that sees every commit
// logged before it; ViewFile reads the bbolt file alone.
//
// After a clean Close, Open trusts the file on a checksum of its pages
// instead of reading every one of them (clean.go): start-up does not grow
// with the file after a clean stop, only after a crash.
//
// Open never writes to a file it does not recognise: a file that is not a
// bbolt database, a bbolt database without calld's magic, a damaged or
// truncated file, or a file written by a newer calld is refused with an
// error naming the file (ErrForeign, ErrCorrupt, ErrNewerSchema), and the
// file is left byte for byte as it was. A second Open of a file in use
// fails after Options.Timeout with ErrLocked ("calld is already running").
//
// The file holds the session's auth key, so Open leaves it mode 0600: a
// new file is created so, an existing one of calld's user is chmod-ed,
// and one of another user with any other mode is refused (ErrNotPrivate).
//
// Layout (bucket: key -> value; all integers big-endian):
//
//	meta:         "magic" -> "calld-state", "schema" -> uint32, "last_seq" -> uint64,
//	              "calls_total" -> uint64, "live_next" -> uint64 (the last
//	              position given in calls_live), "max_at" -> uint64 (the
//	              latest unixnano appended to the journal), "account" -> uint64
//	              (the Telegram user id whose calls and updates state the
//	              file holds; absent until the daemon first saw its
//	              session logged in), "wal_salt" -> 8 random bytes (the
//	              commit log's frames carry it in their checksum),
//	              "wal_seq" -> uint64 (the last logged commit the file holds)
//	calls:        callID(8) -> call record (opaque JSON, a calld.Call)
//	              callID(8)|seq(8) -> empty (the call's journal index)
//	              callID(8)|'L' -> position(8) (the call's place in calls_live)
//	calls_live:   position(8) -> callID(8) (the calls not yet ended, in
//	              the order they became live)
//	journal:      seq(8) -> Event JSON
//	journal_at:   unixnano(8)|seq(8) -> empty (retention by age, for the
//	              events stamped before max_at when appended: the journal
//	              is in time order but for them)
//
// The per-call journal index and live position share the calls bucket so
// that a step's record and index entries land on the same page: a
// transition dirties one random page of the tree instead of two or
// three. The live index and the time index grow at their end: a commit
// dirties their last page (or none), not one page per call (schema 2;
// schema 1 keyed calls_live by call id and indexed every event by time,
// and Open migrates such a file, migrate.go).
//
//	updates:      "state" -> UpdatesState JSON
//	session:      "mtproto" -> gotd session bytes
//	requests:     random_id(4) -> a pending phone.requestCall (opaque JSON,
//	              with the key exchange's secret; created on first use)
//	call_secrets: callID(8) -> what a live call needs to go on after a
//	              restart (key-exchange material, media key), as private
//	              as the session; erased when the call ends. Created on
//	              first use, so older files open unchanged.
//
// Call ids are stored as uint64(id), so negative Telegram ids sort after
// the positive ones; only exact lookups and scans depend on the order.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gotd/td/clock"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/calld/calld"
)

// SchemaVersion is the version of the layout this package writes. A file
// with a higher version is refused with ErrNewerSchema.
const SchemaVersion = 2

// magic marks a bbolt file as calld's state file.
const magic = "calld-state"

// Errors of Open and of transactions; match them with errors.Is. The
// errors returned wrap them with the file name and the details.
var (
	// ErrLocked: another process (or another Open in this process) holds
	// the state file.
	ErrLocked = errors.New("calld is already running")
	// ErrCorrupt: the file is a bbolt database but damaged or truncated.
	ErrCorrupt = errors.New("state file is corrupt")
	// ErrForeign: the file is not a bbolt database, or is one that is not
	// calld's.
	ErrForeign = errors.New("not a calld state file")
	// ErrNewerSchema: the file was written by a newer calld.
	ErrNewerSchema = errors.New("state file has a newer schema")
	// ErrNotPrivate: the file can be read by others than calld and calld
	// cannot make it 0600 (it belongs to another user).
	ErrNotPrivate = errors.New("state file is not private")
	// ErrClosed: the DB is closed.
	ErrClosed = errors.New("state file is closed")
	// ErrNotFound: no such call (or no session). It carries the control
	// API code calld.ENOTFOUND.
	ErrNotFound error = calld.Errorf(calld.ENOTFOUND, "not found")
)

// Retention bounds the journal. A zero field does not limit.
type Retention struct {
	// MaxAge removes events whose At is older than Options.Clock.Now()-MaxAge.
	MaxAge time.Duration
	// MaxEvents keeps at most this many of the newest events.
	MaxEvents int
}

// Options configures Open. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for the file lock; default 1s. Open never
	// waits forever.
	Timeout time.Duration
	// Clock is the clock used by Prune and for events appended with a zero
	// At; default the system clock.
	Clock clock.Clock
	// Retention is applied by Prune.
	Retention Retention
	// CommitSeconds, when set, observes the duration of every durable
	// commit, on Clock (calld_store_commit_seconds): a Log's write and
	// fdatasync, and a bbolt transaction (Update, a checkpoint).
	CommitSeconds Observer
	// Replay puts a commit of the commit log into the bbolt file (see
	// Log). Open needs it only when the log holds commits the file does
	// not have yet (after a crash); without it such an Open fails.
	Replay ReplayFunc
}

// Observer takes one observation (a Prometheus histogram is one).
type Observer interface {
	Observe(float64)
}

// DefaultTimeout is the lock timeout when Options.Timeout is zero.
const DefaultTimeout = time.Second

// DB is an open state file. Its methods are safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
	opts Options

	closeMu sync.RWMutex // guards closed
	closed  bool

	// walked: Open validated every page (the file was not known clean).
	walked bool
	// cleanTxid is the transaction of the clean stop Open found (0:
	// none; see clean.go).
	cleanTxid uint64

	wal *wal // the commit log (wal.go)
}

// boltOptions are the bbolt options of the read-write open.
//
// NoFreelistSync: the freelist is not written at each commit (fewer pages
// per commit); Close's last transaction writes it (clean.go), and after an
// unclean stop bbolt rebuilds it on open by walking the reachable pages,
// which Open does then anyway to validate the file. The map freelist avoids the
// array type's slowdown on fragmented files. NoSync is never set: every
// Update is on disk when it returns.
func boltOptions(timeout time.Duration) *bolt.Options {
	return &bolt.Options{
		Timeout:        timeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
}

// Open opens or creates the state file at path. A missing or empty file
// is created with the current schema. An existing file is first opened
// read-only and validated (meta pages, size, every page reachable, bbolt's
// consistency check, calld's magic and schema) before it is opened for
// writing, so a file that is refused is never written to. After a clean
// Close the page walk and the consistency check are replaced by a
// checksum of the pages taken at that Close (clean.go): a file changed
// since (a crash after a commit, a damaged page) is walked.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.System
	}
	if path == "" {
		return nil, errors.New("store: open: empty path")
	}

	fresh, empty := false, false
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fresh = true
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	case st.IsDir():
		return nil, fmt.Errorf("store: open %s: %w: it is a directory", path, ErrForeign)
	case st.Size() == 0:
		// An empty file holds nothing to protect (for example a crash
		// during the very first initialisation): initialise it.
		fresh = true
	}
	var cleanTxid uint64
	if !fresh {
		best, err := preflight(path)
		if err != nil {
			return nil, err
		}
		if stoppedCleanly(path, best) {
			cleanTxid = best.txid
		} else if empty, err = validate(path, opts.Timeout); err != nil {
			return nil, err
		}
	}

	if st != nil {
		// A file that is already there (an empty one included) is made
		// private before calld writes the session's auth key into it.
		if err := makePrivate(path, st); err != nil {
			return nil, err
		}
	}
	bdb, err := openBolt(path, boltOptions(opts.Timeout))
	if err != nil {
		return nil, openError(path, opts.Timeout, err)
	}
	if fresh {
		if err := syncDir(filepath.Dir(path)); err != nil {
			_ = bdb.Close()
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
	}
	if fresh || empty {
		err = bdb.Update(func(tx *bolt.Tx) error { return ensureSchema(path, tx) })
	} else {
		// Read-only: opening a valid file of this schema writes nothing
		// (but the replay of its commit log after a crash, openWAL);
		// one of an older schema is migrated, in one transaction.
		var old bool
		err = bdb.View(func(tx *bolt.Tx) error {
			err := checkSchema(path, tx)
			old = err == nil && schemaOf(tx) < SchemaVersion
			return err
		})
		if err == nil && old {
			err = bdb.Update(func(tx *bolt.Tx) error { return migrate(path, tx) })
		}
	}
	if err != nil {
		_ = bdb.Close()
		return nil, err
	}

	return newDB(bdb, path, opts, !fresh && cleanTxid == 0, cleanTxid)
}

// newDB is the DB of the open bbolt file bdb, with its commit log opened
// (and replayed).
func newDB(bdb *bolt.DB, path string, opts Options, walked bool, cleanTxid uint64) (*DB, error) {
	db := &DB{bolt: bdb, path: path, opts: opts, walked: walked, cleanTxid: cleanTxid}
	var err error
	if db.wal, err = openWAL(db, opts.Replay); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return db, nil
}

// openBolt is bolt.Open with bbolt's panics turned into ErrCorrupt.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: bbolt: %v", ErrCorrupt, p)
		}
	}()
	return bolt.Open(path, 0o600, o)
}

// makePrivate gives an existing state file mode 0600 when it has any
// other: it holds the MTProto auth key. A file of another user is not
// changed but refused (ErrNotPrivate): calld does not take it over.
func makePrivate(path string, st os.FileInfo) error {
	mode := st.Mode().Perm()
	if mode == 0o600 {
		return nil
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("store: open %s: %w: mode %#o, owned by uid %d, not by calld's uid %d; "+
			"make it 0600 or give it to calld's user (the file was not modified)", path, ErrNotPrivate, mode, sys.Uid, os.Geteuid())
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("store: open %s: %w: mode %#o, cannot make it 0600: %w", path, ErrNotPrivate, mode, err)
	}
	return nil
}

// openError names the file and classifies an error of bolt.Open.
func openError(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("store: open %s: %w (the file was not modified)", path, err)
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: state file %s is locked by another process (waited %s)", ErrLocked, path, timeout)
	case errors.Is(err, berrors.ErrInvalid):
		return fmt.Errorf("store: open %s: %w: not a bbolt database (the file was not modified)", path, ErrForeign)
	case errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("store: open %s: %w: %v (the file was not modified)", path, ErrCorrupt, err)
	}
	return fmt.Errorf("store: open %s: %w", path, err)
}

// ensureSchema creates the buckets of a new file, or checks the magic and
// the schema of an existing one.
func ensureSchema(path string, tx *bolt.Tx) error {
	if meta := tx.Bucket(bMeta); meta != nil {
		return checkSchema(path, tx)
	}
	// No meta bucket: only an empty bbolt file (a new one) is ours to
	// initialise.
	empty := true
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return errStop })
	if !empty {
		return fmt.Errorf("store: open %s: %w: bbolt database without calld's magic (the file was not modified)", path, ErrForeign)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("store: create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bMeta)
	if err := meta.Put(kMagic, []byte(magic)); err != nil {
		return fmt.Errorf("store: write magic: %w", err)
	}
	if err := meta.Put(kSchema, be32(SchemaVersion)); err != nil {
		return fmt.Errorf("store: write schema: %w", err)
	}
	if err := meta.Put(kLastSeq, be64(0)); err != nil {
		return fmt.Errorf("store: write last seq: %w", err)
	}
	return nil
}

// schemaOf is the schema version of a file checkSchema accepted.
func schemaOf(tx *bolt.Tx) uint32 { return u32(tx.Bucket(bMeta).Get(kSchema)) }

// checkSchema checks the magic, the schema version and the buckets of a
// file that has a meta bucket.
func checkSchema(path string, tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	if meta == nil || string(meta.Get(kMagic)) != magic {
		return fmt.Errorf("store: open %s: %w: bbolt database without calld's magic (the file was not modified)", path, ErrForeign)
	}
	v := meta.Get(kSchema)
	if len(v) != 4 {
		return fmt.Errorf("store: open %s: %w: schema version is missing or malformed (the file was not modified)", path, ErrCorrupt)
	}
	switch sv := u32(v); {
	case sv > SchemaVersion:
		return fmt.Errorf("store: open %s: %w: version %d, this calld reads up to %d (the file was not modified; upgrade calld)", path, ErrNewerSchema, sv, SchemaVersion)
	case sv < 1:
		return fmt.Errorf("store: open %s: %w: schema version %d (the file was not modified)", path, ErrCorrupt, sv)
	}
	if len(meta.Get(kLastSeq)) != 8 {
		return fmt.Errorf("store: open %s: %w: last seq is missing or malformed (the file was not modified)", path, ErrCorrupt)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("store: open %s: %w: bucket %q is missing (the file was not modified)", path, ErrCorrupt, name)
		}
	}
	return nil
}

var errStop = errors.New("stop")

// syncDir makes a newly created file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Path returns the file's path.
func (db *DB) Path() string { return db.path }

// Close puts the commit log's pending commits into the bbolt file (a
// checkpoint; if it fails they stay in the log, and the next Open replays
// them), closes the log, and ends with a transaction that writes bbolt's
// freelist, closes the file, releases its lock and records the clean stop
// (clean.go); it writes nothing when nothing was committed since a clean
// Open. Calls after Close fail with ErrClosed.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if db.closed {
		db.closeMu.Unlock()
		return nil
	}
	db.closed = true
	db.closeMu.Unlock()
	db.wal.mu.Lock()
	err := db.checkpointLocked()
	err = errors.Join(err, db.wal.f.Close())
	db.wal.mu.Unlock()
	if err := errors.Join(err, db.markClean()); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}

func (db *DB) isClosed() bool {
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	return db.closed
}

// Update runs fn in one read-write transaction and makes it durable
// (fsync) before returning nil. The transaction first puts the commit
// log's pending commits into the file (a checkpoint), so fn sees them.
// If fn returns an error nothing is written, the pending commits
// included (they stay pending). fn runs at most once (not when a pending
// commit fails first); it must not call Update, View or Log.
func (db *DB) Update(fn func(*Tx) error) error {
	if db.isClosed() {
		return ErrClosed
	}
	db.wal.mu.Lock()
	defer db.wal.mu.Unlock()
	return db.updateLocked(fn)
}

// View runs fn in a read-only transaction that sees every commit made
// before View was called: the commit log's pending commits are first put
// into the file (a checkpoint, a write). When the file cannot take them
// (a full disk), fn reads them in a transaction that is rolled back
// instead (readAside). Keep it short: a long read transaction delays the
// remapping a growing file needs, and fn must not write, nor call Update,
// View or Log.
func (db *DB) View(fn func(*Tx) error) error {
	if db.isClosed() {
		return ErrClosed
	}
	if aside, err := db.checkpointOr(fn); aside {
		return err
	}
	return db.ViewFile(fn)
}

// checkpointOr checkpoints; when that fails it runs fn in readAside and
// returns aside with fn's error.
func (db *DB) checkpointOr(fn func(*Tx) error) (aside bool, err error) {
	db.wal.mu.Lock()
	defer db.wal.mu.Unlock()
	if db.checkpointLocked() == nil {
		return false, nil
	}
	return true, db.readAside(fn)
}
