package updates

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gotd/td/tg"
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

// TestMovingHoleWaitsFromTheMove: an update that fills the first hole
// while a later one stays held closes that gap and opens the next, whose
// GapTimeout starts then; a hole that stays put is still fetched after
// GapTimeout, however old the first one was. Out-of-order pushes of a
// long burst are a moving hole, not one gap as old as the burst (a
// 5,000-call burst asked 1-2 getDifference in 4 of 5 rounds without it).
func TestMovingHoleWaitsFromTheMove(t *testing.T) {
	for _, tc := range []struct {
		name string
		nth  func(k int) tg.UpdatesClass // the k-th update after base
	}{
		{"seq", func(k int) tg.UpdatesClass { return ups(base.Seq+k, base.Date, call(int64(k))) }},
		{"pts", func(k int) tg.UpdatesClass { return ups(0, base.Date, newMsg(base.Pts+k, 1)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(base, t0, Options{})
			at := func(d time.Duration, o Output, wantRequest bool) {
				t.Helper()
				if (o.Request != nil) != wantRequest {
					t.Fatalf("t0+%v: request %v, want one: %v", d, o.Request, wantRequest)
				}
			}
			// 3 arrives first: 1 and 2 are missing.
			at(0, e.Push(tc.nth(3), t0), false)
			// 1 arrives at 300 ms: the hole moves to 2, its wait starts.
			at(300*ms, e.Push(tc.nth(1), t0.Add(300*ms)), false)
			// 600 ms after the first gap, 300 ms after the move: no fetch.
			at(600*ms, e.Tick(t0.Add(600*ms)), false)
			at(799*ms, e.Tick(t0.Add(799*ms)), false)
			// 2 never comes: fetched 500 ms after the hole moved to it.
			at(800*ms, e.Tick(t0.Add(800*ms)), true)
		})
	}
}

// TestUpdateThatMovesNothingKeepsTheWait: an update that applies without
// moving local (pts_count 0 at pts == local) while a later one is held
// fills no hole: the gap's wait goes on, and the difference is asked
// GapTimeout after the gap opened however often such updates come
// (the review of the moving hole found the wait restarted by them).
func TestUpdateThatMovesNothingKeepsTheWait(t *testing.T) {
	e := New(base, t0, Options{})
	if o := e.Push(ups(0, base.Date, newMsg(base.Pts+5, 1)), t0); o.Request != nil {
		t.Fatalf("request at the gap's opening: %s", describeReq(o.Request))
	}
	for d := 100 * ms; d < 500*ms; d += 100 * ms {
		o := e.Push(ups(0, base.Date, newMsg(base.Pts, 0)), t0.Add(d))
		if o.Request != nil {
			t.Fatalf("t0+%v: request %s before the gap's 500 ms", d, describeReq(o.Request))
		}
		if len(o.Dispatch) != 1 {
			t.Fatalf("t0+%v: %d dispatched, want the pts_count 0 update", d, len(o.Dispatch))
		}
	}
	if o := e.Tick(t0.Add(500 * ms)); o.Request == nil {
		t.Fatal("no getDifference 500 ms after the gap opened")
	}
}

// TestLateUpdateBehindABurst: one update handed over after the 5,000
// that follow it (gotd's order for a discard's result in a burst) is a
// gap filled, not a buffer overflow: no getDifference, everything
// dispatched once, in seq order.
func TestLateUpdateBehindABurst(t *testing.T) {
	const n = 5000
	e := New(base, t0, Options{})
	for k := 2; k <= n+1; k++ {
		if o := e.Push(ups(base.Seq+k, base.Date, call(int64(k))), t0); o.Request != nil || len(o.Dispatch) != 0 {
			t.Fatalf("push %d of the held run: request %v, %d dispatched", k, o.Request, len(o.Dispatch))
		}
	}
	o := e.Push(ups(base.Seq+1, base.Date, call(1)), t0)
	if o.Request != nil {
		t.Fatalf("getDifference %s for a filled gap", describeReq(o.Request))
	}
	if len(o.Dispatch) != n+1 {
		t.Fatalf("%d dispatched, want %d", len(o.Dispatch), n+1)
	}
	for i, d := range o.Dispatch {
		if want := describe(Dispatch{Update: call(int64(i + 1))}); describe(d) != want {
			t.Fatalf("dispatch %d is %s, want %s", i, describe(d), want)
		}
	}
	if got := e.State().Seq; got != base.Seq+n+1 {
		t.Fatalf("seq %d, want %d", got, base.Seq+n+1)
	}
}
