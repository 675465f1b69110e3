package store

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestOpenMakesFilePrivate: whatever mode a state file calld owns had,
// it is 0600 once Open returns, for an empty file initialised in place as
// for a valid one.
func TestOpenMakesFilePrivate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  os.FileMode
		setup func(t *testing.T, path string)
	}{
		{"empty 0644", 0o644, func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"valid 0644", 0o644, func(t *testing.T, path string) { makeCalldDB(t, path, 10) }},
		{"valid 0666", 0o666, func(t *testing.T, path string) { makeCalldDB(t, path, 10) }},
		{"valid 0640", 0o640, func(t *testing.T, path string) { makeCalldDB(t, path, 10) }},
		{"valid 0400", 0o400, func(t *testing.T, path string) { makeCalldDB(t, path, 10) }},
		{"new", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempDB(t)
			if tc.setup != nil {
				tc.setup(t, path)
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			db := openT(t, path, Options{})
			defer db.Close()
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v after Open, want 0600", st.Mode().Perm())
			}
		})
	}
}

// TestOpenRefusesOpenFileItCannotFix: a state file with open permissions
// that belongs to another user is refused with an error naming the file,
// and left as it was (mode and bytes). It needs root to give the file away.
func TestOpenRefusesOpenFileItCannotFix(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	for _, tc := range []struct {
		name  string
		empty bool
	}{{"empty", true}, {"valid", false}} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempDB(t)
			if tc.empty {
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				makeCalldDB(t, path, 10)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			before := snap(t, path)
			db, err := Open(path, Options{})
			if err == nil {
				db.Close()
				t.Fatal("Open accepted a 0644 file owned by another user")
			}
			if !errors.Is(err, ErrNotPrivate) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v: want ErrNotPrivate naming %s", err, path)
			}
			if !before.same(snap(t, path)) {
				t.Fatal("the refused file was modified")
			}
		})
	}
}
