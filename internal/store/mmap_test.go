package store

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFileMappedLarge: Open maps the state file initialMmap bytes large
// from the start, so that a growing file is not mapped anew (and its
// write transaction's nodes copied out of the old mapping) at each
// doubling; the file itself stays small.
func TestFileMappedLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calld.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	mapped := 0
	for _, line := range strings.Split(string(maps), "\n") {
		if !strings.HasSuffix(line, " "+path) {
			continue
		}
		from, to, ok := strings.Cut(strings.Fields(line)[0], "-")
		if !ok {
			t.Fatalf("maps line %q", line)
		}
		start, err1 := strconv.ParseUint(from, 16, 64)
		end, err2 := strconv.ParseUint(to, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("maps line %q", line)
		}
		mapped += int(end - start)
	}
	if mapped < initialMmap {
		t.Fatalf("the state file is mapped %d bytes large, want at least %d", mapped, initialMmap)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() >= int64(initialMmap) {
		t.Fatalf("the state file is %d bytes: the mapping grew it", st.Size())
	}
}
