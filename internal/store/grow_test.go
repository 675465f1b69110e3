package store

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFileStaysSmall: a new state file holding one call is a few pages
// large. (With bbolt's InitialMmapSize set large, tried in 6f2b4de, its
// first growth made it 16 MiB: bbolt then grows a file by AllocSize.)
func TestFileStaysSmall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calld.db")
	db := openT(t, path, Options{})
	if err := db.Update(func(tx *Tx) error {
		return tx.PutCall(1, []byte(`{"id":1}`), true)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Fatalf("a state file with one call is %d bytes", st.Size())
	}
}
