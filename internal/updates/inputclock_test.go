package updates

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestBacklogIsNotAGap: a burst of n pushes, shuffled, reaches the engine
// in chunks; between and during chunks the caller is busy (its own
// backlog, commits) while the clock passes the gap wait many times over.
// Every push arrives, so no getDifference is requested, and every call is
// dispatched exactly once.
func TestBacklogIsNotAGap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		chunk int
		step  time.Duration // clock move per push while busy
		pause time.Duration // clock move between chunks (commit), still busy
	}{
		{"small chunks", 999, 10, time.Millisecond, time.Second},
		{"big chunks", 999, 256, 5 * time.Millisecond, 2 * time.Second},
		{"one chunk", 500, 500, 10 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
			seqs := rng.Perm(tc.n)
			now := t0
			e := New(base, now, Options{})
			seen := map[string]int{}
			check := func(o Output) {
				t.Helper()
				if o.Request != nil {
					t.Fatalf("getDifference %s at t0+%v during the burst", describeReq(o.Request), now.Sub(t0))
				}
				for _, d := range o.Dispatch {
					seen[describe(d)]++
				}
			}
			for i := 0; i < tc.n; i += tc.chunk {
				e.Busy(now)
				for _, k := range seqs[i:min(i+tc.chunk, tc.n)] {
					check(e.Push(ups(base.Seq+1+k, base.Date, call(int64(k))), now))
					now = now.Add(tc.step)
					check(e.Tick(now))
				}
				now = now.Add(tc.pause)
				check(e.Tick(now))
			}
			check(e.Idle(now))
			if got := e.State().Seq; got != base.Seq+tc.n {
				t.Fatalf("seq %d, want %d", got, base.Seq+tc.n)
			}
			if len(seen) != tc.n {
				t.Fatalf("%d calls dispatched, want %d", len(seen), tc.n)
			}
			for k, c := range seen {
				if c != 1 {
					t.Fatalf("%s dispatched %d times", k, c)
				}
			}
		})
	}
}

// TestRealGapWaitsOnInputTime: a gap that nothing fills gets exactly one
// getDifference once the engine has waited GapTimeout idle (input time):
// busy time does not count, idle time before and after it adds up, and
// 1 ms short is not enough.
func TestRealGapWaitsOnInputTime(t *testing.T) {
	type phase struct {
		busy bool
		d    time.Duration
	}
	for _, tc := range []struct {
		name   string
		phases []phase // after the gap opened
	}{
		{"idle only", []phase{{false, 500 * ms}}},
		{"busy then idle", []phase{{true, 3 * time.Second}, {false, 500 * ms}}},
		{"idle busy idle", []phase{{false, 300 * ms}, {true, 5 * time.Second}, {false, 200 * ms}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			e := New(base, now, Options{})
			requests := 0
			count := func(o Output) {
				if o.Request != nil {
					requests++
				}
			}
			e.Busy(now)
			count(e.Push(ups(base.Seq+1, base.Date, call(1)), now))
			count(e.Push(ups(base.Seq+3, base.Date, call(3)), now)) // seq 12 never comes
			count(e.Idle(now))
			idle := time.Duration(0)
			for _, p := range tc.phases {
				if p.busy {
					e.Busy(now)
					now = now.Add(p.d)
					count(e.Tick(now))
					count(e.Idle(now))
					continue
				}
				if idle+p.d == DefaultGapTimeout {
					count(e.Tick(now.Add(p.d - ms)))
					if requests != 0 {
						t.Fatalf("getDifference after %v idle", idle+p.d-ms)
					}
				}
				now = now.Add(p.d)
				idle += p.d
				o := e.Tick(now)
				count(o)
			}
			if requests != 1 {
				t.Fatalf("%d getDifference requests after %v idle, want 1", requests, idle)
			}
			if !e.InFlight() {
				t.Fatal("no request in flight")
			}
		})
	}
}
