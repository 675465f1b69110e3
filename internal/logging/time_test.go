package logging

import (
	"testing"
	"time"
)

// TestAppendTime: appendTime writes what AppendFormat with timeLayout
// writes, at the edges of each field and outside the years it writes
// itself.
func TestAppendTime(t *testing.T) {
	for _, tc := range []time.Time{
		time.Date(2026, 3, 14, 9, 26, 54, 137793000, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 999, time.UTC), // under a microsecond
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0).UTC(),
		{},
	} {
		want := tc.AppendFormat([]byte("x"), timeLayout)
		if got := appendTime([]byte("x"), tc); string(got) != string(want) {
			t.Errorf("%v: %s, want %s", tc, got, want)
		}
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(1773480414), int64(137793000))
	f.Add(int64(0), int64(0))
	f.Add(int64(-62135596800), int64(1))
	f.Add(int64(253402300799), int64(999999999))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec).UTC()
		if got, want := appendTime(nil, tm), tm.AppendFormat(nil, timeLayout); string(got) != string(want) {
			t.Fatalf("%d.%09d: %s, want %s", sec, nsec, got, want)
		}
	})
}

func BenchmarkAppendTime(b *testing.B) {
	tm := time.Date(2026, 3, 14, 9, 26, 54, 137793000, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("appendTime", func(b *testing.B) {
		for b.Loop() {
			buf = appendTime(buf[:0], tm)
		}
	})
	b.Run("Format", func(b *testing.B) {
		for b.Loop() {
			_ = tm.Format(timeLayout)
		}
	})
}
