package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld/internal/sim"
)

const (
	methodDiscard = "phone.discardCall"
	methodGetDiff = "updates.getDifference"
)

// result is one run of one scenario by one side.
type result struct {
	side, scenario string
	calls          int
	wall           time.Duration   // first push -> last first discard answered
	pushing        time.Duration   // first push -> last push sent
	cpu            time.Duration   // utime+stime over the burst
	cpuStop        time.Duration   // utime+stime from the burst's start to the exit after SIGTERM
	hwm            int64           // VmHWM at the end, bytes
	latencies      []time.Duration // push -> first discardCall at the sim, per call discarded
	lost, dup      int
	getDiff        int
	complete       bool            // every call discarded before the quiet period
	durable        []time.Duration // single calls of calld: durable writes in its directory after it stopped (floor.go)
	durableSpaced  []time.Duration // the same, each after durableGap idle
}

// world is one run's simulator and directory: every run starts on a fresh
// simulator, so that no run inherits another's history.
type world struct {
	srv    *sim.Server
	dir    string
	peer   int64
	pushed map[int64]time.Time
	order  []int64
}

func newWorld(parent string) (*world, error) {
	srv, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "ab-")
	if err != nil {
		_ = srv.Close()
		return nil, err
	}
	return &world{srv: srv, dir: dir, peer: srv.AddPeer("caller"), pushed: map[int64]time.Time{}}, nil
}

// close stops the simulator and removes the run's directory unless keep.
func (w *world) close(keep bool) {
	_ = w.srv.Close()
	if !keep {
		_ = os.RemoveAll(w.dir)
	}
}

// push makes n incoming calls, as fast as the simulator takes them. The
// scenarios prepare the calls' DH halves first (sim.PrepareCalls), so that
// the pushes and the latencies measure the client, not the simulator's
// modular exponentiation.
func (w *world) push(n int) error {
	for range n {
		at := time.Now()
		id, err := w.srv.IncomingCall(w.peer, false)
		if err != nil {
			return err
		}
		w.pushed[id] = at
		w.order = append(w.order, id)
	}
	return nil
}

// waitDiscards waits until want discards were answered in all, or until
// nothing happened at the simulator for quiet. It returns when the
// last one was answered: the simulator answers under the lock Executed
// takes, so a count read is a count of answers sent.
func (w *world) waitDiscards(want int, quiet time.Duration) (time.Time, bool) {
	t := time.NewTimer(quiet)
	defer t.Stop()
	for {
		ch := w.srv.Changed()
		if w.srv.Executed(methodDiscard) >= want {
			return time.Now(), true
		}
		select {
		case <-ch:
			t.Reset(quiet)
		case <-t.C:
			return time.Now(), false
		}
	}
}

// waitCall waits until call id was discarded, or until nothing happened
// at the simulator for quiet.
func (w *world) waitCall(id int64, quiet time.Duration) bool {
	t := time.NewTimer(quiet)
	defer t.Stop()
	seen := 0
	for {
		ch := w.srv.Changed()
		recs := w.srv.Requests()
		for _, rec := range recs[min(seen, len(recs)):] {
			if req, ok := rec.Req.(*tg.PhoneDiscardCallRequest); ok && req.Peer.ID == id {
				return true
			}
		}
		seen = len(recs)
		select {
		case <-ch:
			t.Reset(quiet)
		case <-t.C:
			return false
		}
	}
}

// waitQuiet returns once nothing happened at the simulator for quiet.
func (w *world) waitQuiet(quiet time.Duration) {
	_, _ = w.waitDiscards(int(^uint(0)>>1), quiet)
}

// tally fills r's latencies, lost and duplicated from the simulator's
// records of phone.discardCall, and returns when the last call's first
// discard arrived.
func (w *world) tally(r *result) time.Time {
	first := map[int64]time.Time{}
	count := map[int64]int{}
	for _, rec := range w.srv.Requests() {
		req, ok := rec.Req.(*tg.PhoneDiscardCallRequest)
		if rec.Method != methodDiscard || !ok {
			continue
		}
		id := req.Peer.ID
		if count[id] == 0 {
			first[id] = rec.At
		}
		count[id]++
	}
	var last time.Time
	r.latencies, r.lost, r.dup = r.latencies[:0], 0, 0
	for _, id := range w.order {
		at, ok := first[id]
		if !ok {
			r.lost++
			continue
		}
		r.latencies = append(r.latencies, at.Sub(w.pushed[id]))
		if count[id] > 1 {
			r.dup++
		}
		if at.After(last) {
			last = at
		}
	}
	return last
}

// burst pushes n calls to a running side and measures it.
func burst(w *world, p *proc, n int, quiet time.Duration) (result, error) {
	r := result{calls: n}
	w.srv.PrepareCalls(n)
	gd0 := w.srv.Count(methodGetDiff)
	cpu0, err := cpuOf(p.pid())
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	if err := w.push(n); err != nil {
		return r, err
	}
	r.pushing = time.Since(t0)
	end, ok := w.waitDiscards(n, quiet)
	cpu1, err := cpuOf(p.pid())
	if err != nil {
		return r, err
	}
	if r.hwm, err = hwmOf(p.pid()); err != nil {
		return r, err
	}
	r.cpu, r.getDiff, r.complete = cpu1-cpu0, w.srv.Count(methodGetDiff)-gd0, ok
	if err := p.stop(); err != nil {
		return r, err
	}
	// What a side does after the last discard (its calls' ends; calld's
	// checkpoint of its commit log, at the latest when it stops) counts
	// here; the process's own accounting at its exit (getrusage).
	if ps := p.cmd.ProcessState; ps != nil {
		r.cpuStop = ps.UserTime() + ps.SystemTime() - cpu0
	}
	last := w.tally(&r)
	if !ok {
		end = last
	}
	r.wall = end.Sub(t0)
	return r, nil
}

// singles pushes n calls one at a time, each after the previous one's
// discard was answered.
func singles(w *world, p *proc, n int, quiet time.Duration) (result, error) {
	r := result{calls: n, complete: true}
	w.srv.PrepareCalls(n)
	for range n {
		if err := w.push(1); err != nil {
			return r, err
		}
		if !w.waitCall(w.order[len(w.order)-1], quiet) {
			r.complete = false
			break
		}
	}
	if err := p.stop(); err != nil {
		return r, err
	}
	w.tally(&r)
	return r, nil
}

// killed pushes half of n calls, kills the side with SIGKILL, pushes the
// rest while it is down, restarts it and waits until the simulator has
// been quiet for quiet.
func killed(w *world, s side, p *proc, n int, quiet time.Duration) (result, error) {
	r := result{calls: n}
	w.srv.PrepareCalls(n)
	if err := w.push(n / 2); err != nil {
		return r, err
	}
	p.kill()
	if err := w.push(n - n/2); err != nil {
		return r, err
	}
	p, err := s.restart(w.srv, w.dir)
	if err != nil {
		return r, fmt.Errorf("restart: %w", err)
	}
	w.waitQuiet(quiet)
	if err := p.stop(); err != nil {
		return r, err
	}
	w.tally(&r)
	r.complete = r.lost == 0
	return r, nil
}
