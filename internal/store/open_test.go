package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/calld/calld"
)

// makeCalldDB writes a calld file holding n transitions and returns its
// bytes' meta: page size and high-water page.
func makeCalldDB(t *testing.T, path string, n int) {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	populate(t, db, n)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// fileMeta reads the newest valid meta page of a bbolt file.
func fileMeta(t *testing.T, path string) boltMeta {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0 := parseMeta(data)
	m1 := parseMeta(data[m0.pageSize:])
	if m1.txid > m0.txid {
		return m1
	}
	return m0
}

func rawBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
}

func overwrite(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestOpenRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want error
		text string // also in the message
	}{
		{"text file", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("[state]\npath = \"/var/lib/calld/calld.db\"\n"), 0o600)
		}, ErrForeign, "not a bbolt database"},
		{"one byte", func(t *testing.T, p string) { os.WriteFile(p, []byte("x"), 0o600) }, ErrForeign, "not a bbolt database"},
		{"random bytes, 64 KiB", func(t *testing.T, p string) { os.WriteFile(p, randomBytes(64<<10, 1), 0o600) }, ErrForeign, "not a bbolt database"},
		{"random bytes, one page", func(t *testing.T, p string) { os.WriteFile(p, randomBytes(4096, 2), 0o600) }, ErrForeign, "not a bbolt database"},
		{"zeros", func(t *testing.T, p string) { os.WriteFile(p, make([]byte, 32<<10), 0o600) }, ErrForeign, "not a bbolt database"},
		{"foreign bbolt database", func(t *testing.T, p string) {
			rawBolt(t, p, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("widgets"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			})
		}, ErrForeign, "without calld's magic"},
		{"bbolt database with another magic", func(t *testing.T, p string) {
			rawBolt(t, p, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("meta"))
				if err != nil {
					return err
				}
				return b.Put([]byte("magic"), []byte("someone-else"))
			})
		}, ErrForeign, "without calld's magic"},
		{"newer schema", func(t *testing.T, p string) {
			makeCalldDB(t, p, 10)
			rawBolt(t, p, func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, be32(SchemaVersion+1)) })
		}, ErrNewerSchema, fmt.Sprintf("version %d, this calld reads up to %d", SchemaVersion+1, SchemaVersion)},
		{"schema version missing", func(t *testing.T, p string) {
			makeCalldDB(t, p, 10)
			rawBolt(t, p, func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kSchema) })
		}, ErrCorrupt, "schema version"},
		{"bucket missing", func(t *testing.T, p string) {
			makeCalldDB(t, p, 10)
			rawBolt(t, p, func(tx *bolt.Tx) error { return tx.DeleteBucket(bJournalAt) })
		}, ErrCorrupt, `bucket "journal_at" is missing`},
		{"truncated to half", func(t *testing.T, p string) {
			makeCalldDB(t, p, 3000)
			m := fileMeta(t, p)
			os.Truncate(p, int64(m.pgid)*int64(m.pageSize)/2)
		}, ErrCorrupt, "truncated"},
		{"truncated by one page", func(t *testing.T, p string) {
			makeCalldDB(t, p, 3000)
			m := fileMeta(t, p)
			os.Truncate(p, int64(m.pgid-1)*int64(m.pageSize))
		}, ErrCorrupt, "truncated"},
		{"truncated to a page and a half", func(t *testing.T, p string) {
			makeCalldDB(t, p, 100)
			os.Truncate(p, 6144)
		}, ErrCorrupt, "truncated"},
		{"truncated to 100 bytes", func(t *testing.T, p string) {
			makeCalldDB(t, p, 100)
			os.Truncate(p, 100)
		}, ErrCorrupt, "truncated"},
		{"both meta pages damaged", func(t *testing.T, p string) {
			makeCalldDB(t, p, 100)
			m := fileMeta(t, p)
			overwrite(t, p, pageHeaderSize+48, []byte{0xff, 0xff})
			overwrite(t, p, int64(m.pageSize)+pageHeaderSize+48, []byte{0xff, 0xff})
		}, ErrCorrupt, "checksum mismatch"},
		{"root page overwritten", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			m := fileMeta(t, p)
			overwrite(t, p, int64(m.root)*int64(m.pageSize), randomBytes(int(m.pageSize), 3))
		}, ErrCorrupt, ""},
		{"data pages overwritten", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			m := fileMeta(t, p)
			for pg := uint64(2); pg < m.pgid; pg += 2 {
				overwrite(t, p, int64(pg)*int64(m.pageSize), randomBytes(int(m.pageSize), pg))
			}
		}, ErrCorrupt, ""},
		{"leaf page id damaged", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			m := fileMeta(t, p)
			// Page ids are checked when bbolt reads a page: give the
			// last used page a wrong id.
			id := make([]byte, 8)
			binary.NativeEndian.PutUint64(id, 1<<33)
			overwrite(t, p, int64(m.pgid-1)*int64(m.pageSize), id)
		}, ErrCorrupt, ""},
		{"bucket root past the end of the mapping", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			pointJournalRootAt(t, p, 1<<30) // 4 TiB in: a segmentation fault
		}, ErrCorrupt, "memory fault at"},
		{"bucket root past the end of the file", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			m := fileMeta(t, p)
			// Cut the unused tail of the file, so the mapping (a power
			// of two) extends past its end, and point a bucket there:
			// reading that page is a bus error.
			end := int64(m.pgid)*int64(m.pageSize) + 100
			if err := os.Truncate(p, end); err != nil {
				t.Fatal(err)
			}
			pointJournalRootAt(t, p, m.pgid+2)
		}, ErrCorrupt, "memory fault at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "calld.db")
			tc.make(t, path)
			before := snap(t, path)
			entries, _ := os.ReadDir(filepath.Dir(path))
			files := len(entries)
			db, err := Open(path, Options{Timeout: 100 * time.Millisecond})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, path) || !strings.Contains(msg, tc.want.Error()) || !strings.Contains(msg, tc.text) {
				t.Errorf("message %q should name the file, say %q and %q", msg, tc.want, tc.text)
			}
			if after := snap(t, path); !before.same(after) {
				t.Errorf("the file was modified by Open (%d bytes before, %d after)", len(before.data), len(after.data))
			}
			entries, _ = os.ReadDir(filepath.Dir(path))
			if len(entries) != files {
				t.Errorf("Open left %d files in the directory, %d before", len(entries), files)
			}
		})
	}
}

// pointJournalRootAt rewrites, in the root bucket's leaf page, the root
// page id of the "journal" bucket. A leaf page is a 16-byte header (count
// at offset 10) and count 16-byte elements (flags, pos, ksize, vsize; the
// key is pos bytes after its element, the value follows the key).
func pointJournalRootAt(t *testing.T, path string, pg uint64) {
	t.Helper()
	m := fileMeta(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	base := m.root * uint64(m.pageSize)
	page := data[base : base+uint64(m.pageSize)]
	e := binary.NativeEndian
	if flags := e.Uint16(page[8:]); flags != 0x02 {
		t.Fatalf("root page %d has flags %#x, not a leaf", m.root, flags)
	}
	for i := 0; i < int(e.Uint16(page[10:])); i++ {
		el := pageHeaderSize + i*16
		pos, ksize := int(e.Uint32(page[el+4:])), int(e.Uint32(page[el+8:]))
		if string(page[el+pos:el+pos+ksize]) == "journal" {
			v := make([]byte, 8)
			e.PutUint64(v, pg)
			overwrite(t, path, int64(base)+int64(el+pos+ksize), v)
			return
		}
	}
	t.Fatal("journal bucket not found in the root page")
}

func TestOpenNewFiles(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"missing file", func(*testing.T, string) {}},
		{"zero-length file", func(t *testing.T, p string) {
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"bbolt file without buckets", func(t *testing.T, p string) {
			rawBolt(t, p, func(*bolt.Tx) error { return nil })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "calld.db")
			tc.make(t, path)
			db := openT(t, path, Options{})
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "missing file" && st.Mode().Perm() != 0o600 {
				t.Errorf("new file mode %v, want 0600", st.Mode().Perm())
			}
			var e calld.Event
			if err := db.Update(func(tx *Tx) error { return tx.AppendEvent(&e) }); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openT(t, path, Options{})
			if got := seqs(t, db, 0); len(got) != 1 || got[0] != 1 {
				t.Errorf("journal after reopen: %v", got)
			}
			err = db.bolt.View(func(tx *bolt.Tx) error {
				if got := string(tx.Bucket(bMeta).Get(kMagic)); got != magic {
					t.Errorf("magic %q", got)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenValidFileWritesNothing(t *testing.T) {
	path := tempDB(t)
	makeCalldDB(t, path, 100)
	before := snap(t, path)
	db := openT(t, path, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !before.same(snap(t, path)) {
		t.Error("Open and Close of a valid file modified it")
	}
}

func TestOpenLocked(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{"short timeout", 50 * time.Millisecond},
		{"default timeout", 0},
	}
	path := tempDB(t)
	first := openT(t, path, Options{})
	populate(t, first, 10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snap(t, path)
			start := time.Now()
			db, err := Open(path, Options{Timeout: tc.timeout})
			elapsed := time.Since(start)
			if err == nil {
				db.Close()
				t.Fatal("second Open succeeded")
			}
			want := tc.timeout
			if want == 0 {
				want = DefaultTimeout
			}
			if !errors.Is(err, ErrLocked) {
				t.Errorf("err = %v, want ErrLocked", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "calld is already running") || !strings.Contains(msg, path) {
				t.Errorf("message %q should say calld is already running and name %s", msg, path)
			}
			if elapsed > want+time.Second {
				t.Errorf("second Open took %v with timeout %v", elapsed, want)
			}
			if !before.same(snap(t, path)) {
				t.Error("the locked file was modified")
			}
		})
	}
	// Once the first holder closes, the file opens.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	db := openT(t, path, Options{Timeout: 50 * time.Millisecond})
	if got := len(seqs(t, db, 0)); got != 10 {
		t.Errorf("%d events after the lock was released, want 10", got)
	}
}
