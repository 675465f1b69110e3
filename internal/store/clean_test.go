package store

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// copyFile copies the state file as it is on disk while a DB may still
// have it open: what a SIGKILL at that point would leave.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenWalksOnlyAfterUncleanStop: after a clean Close, Open trusts the
// file without reading its pages (no walk, no consistency check, bbolt's
// freelist read from its page instead of rebuilt); after an unclean stop
// (the file copied while open, as a SIGKILL leaves it) or a damage since
// the clean stop, it walks the whole file. "walk" here is the validation
// of every page; the test reads DB.walked, which Open sets.
func TestOpenWalksOnlyAfterUncleanStop(t *testing.T) {
	tests := []struct {
		name string
		// make leaves a file at path (a copy of crashed's state when it
		// simulates a crash).
		make    func(t *testing.T, path string)
		walk    bool
		corrupt bool
	}{
		{"clean close", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
		}, false, false},
		{"clean close, reopened and closed again", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			db := openT(t, p, Options{})
			populate(t, db, 10)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"killed with commits since it was created", func(t *testing.T, p string) {
			live := openT(t, p+".live", Options{})
			populate(t, live, 2000)
			copyFile(t, p+".live", p)
		}, true, false},
		{"killed after a commit since a clean open", func(t *testing.T, p string) {
			makeCalldDB(t, p+".live", 2000)
			live := openT(t, p+".live", Options{})
			populate(t, live, 1)
			copyFile(t, p+".live", p)
		}, true, false},
		{"killed before any commit since a clean open (file unchanged)", func(t *testing.T, p string) {
			makeCalldDB(t, p+".live", 2000)
			live := openT(t, p+".live", Options{})
			_ = live
			copyFile(t, p+".live", p)
		}, false, false},
		{"a data page damaged after the clean close", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			m := fileMeta(t, p)
			overwrite(t, p, int64(m.pgid-1)*int64(m.pageSize)+100, []byte("damage"))
		}, true, true},
		{"a leaf page id damaged after the clean close", func(t *testing.T, p string) {
			makeCalldDB(t, p, 2000)
			m := fileMeta(t, p)
			overwrite(t, p, int64(m.root)*int64(m.pageSize), randomBytes(int(m.pageSize), 9))
		}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tempDB(t)
			tc.make(t, path)
			if !tc.walk {
				if m := fileMeta(t, path); m.freelist == noFreelist {
					t.Error("the clean file has no freelist page: bbolt would rebuild it by reading every page")
				}
			}
			db, err := Open(path, Options{})
			if tc.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.walked != tc.walk {
				t.Errorf("walked = %v, want %v", db.walked, tc.walk)
			}
			if got := seqs(t, db, 0); len(got) == 0 {
				t.Error("the journal is empty")
			}
		})
	}
}

// TestVerifyWalksACleanFile: Verify validates every page even of a
// cleanly closed file, and refuses one damaged since.
func TestVerifyWalksACleanFile(t *testing.T) {
	path := tempDB(t)
	makeCalldDB(t, path, 2000)
	if err := Verify(path, 0); err != nil {
		t.Fatalf("Verify of a clean file: %v", err)
	}
	m := fileMeta(t, path)
	pointJournalRootAt(t, path, m.pgid+1<<20)
	if err := Verify(path, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of a damaged file: %v, want ErrCorrupt", err)
	}
}

// TestTrailerWaitsForTheLock: the trailer is written only while nobody
// holds the file: a daemon that opened it since bbolt's Close (socket
// activation starting the next one) must never have its commits raced.
func TestTrailerWaitsForTheLock(t *testing.T) {
	path := tempDB(t)
	makeCalldDB(t, path, 10)
	_ = openT(t, path, Options{}) // holds the lock, commits nothing
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTrailer(path); err == nil {
		t.Fatal("writeTrailer wrote into a file another DB holds")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("writeTrailer changed a file another DB holds")
	}
}
