package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

// states numbers fsm's states for the Tracker's bit sets.
var states = map[calld.State]uint16{
	calld.StateRequesting: 1 << 0, calld.StateWaiting: 1 << 1, calld.StateRinging: 1 << 2, calld.StateAccepting: 1 << 3,
	calld.StateExchangingKeys: 1 << 4, calld.StateActive: 1 << 5, calld.StateHangingUp: 1 << 6, calld.StateEnded: 1 << 7,
}

// Tracker follows a daemon's journal (GET /v1/events, replay then live)
// and lets callers wait until a call reached a state or until n calls have
// ended. It survives daemon restarts and dropped streams: each new stream
// resumes after the last seq it saw. A gap or a repeat in the stream's seq
// numbers is recorded (Err).
type Tracker struct {
	mu      sync.Mutex
	reached map[int64]uint16 // call id -> states entered
	waiters map[int64][]stateWaiter
	ended   int
	endedW  []countWaiter
	lastSeq uint64
	events  int
	err     error
	drops   int
}

type stateWaiter struct {
	bit uint16 // any of these states
	ch  chan struct{}
}

type countWaiter struct {
	n  int
	ch chan struct{}
}

// NewTracker returns a Tracker that has seen nothing (seq 0).
func NewTracker() *Tracker {
	return &Tracker{reached: map[int64]uint16{}, waiters: map[int64][]stateWaiter{}}
}

// Follow streams the daemon's events into t until ctx is done, resuming
// after a dropped stream (slow_reader) or a lost connection (a daemon
// restart) from the last seq seen. It returns when ctx is done.
func (t *Tracker) Follow(ctx context.Context, cl *client.Client) {
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for ctx.Err() == nil {
		since := t.LastSeq()
		err := cl.Events(ctx, client.EventsOptions{Replay: true, Since: since, Follow: true}, func(ev calld.Event) error {
			t.Add(ev)
			return nil
		})
		if calld.ErrorCode(err) == calld.CodeSlowReader {
			t.mu.Lock()
			t.drops++
			t.mu.Unlock()
			continue
		}
		// The daemon stopped or is not up yet: try again shortly.
		select {
		case <-ctx.Done():
		case <-retry.C:
		}
	}
}

// Add records one journal event.
func (t *Tracker) Add(ev calld.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Seq != t.lastSeq+1 && t.err == nil {
		t.err = fmt.Errorf("event stream: seq %d after %d", ev.Seq, t.lastSeq)
	}
	if ev.Seq > t.lastSeq {
		t.lastSeq = ev.Seq
	}
	t.events++
	bit := states[calld.State(ev.To)]
	had := t.reached[ev.CallID]
	t.reached[ev.CallID] = had | bit
	if bit == states[calld.StateEnded] && had&bit == 0 {
		t.ended++
		keep := t.endedW[:0]
		for _, w := range t.endedW {
			if t.ended >= w.n {
				close(w.ch)
			} else {
				keep = append(keep, w)
			}
		}
		t.endedW = keep
	}
	if ws := t.waiters[ev.CallID]; len(ws) > 0 {
		keep := ws[:0]
		for _, w := range ws {
			if w.bit&bit != 0 {
				close(w.ch)
			} else {
				keep = append(keep, w)
			}
		}
		if len(keep) == 0 {
			delete(t.waiters, ev.CallID)
		} else {
			t.waiters[ev.CallID] = keep
		}
	}
}

// WaitState waits until call id has entered state (now or before).
func (t *Tracker) WaitState(ctx context.Context, id int64, state calld.State) error {
	_, err := t.WaitAny(ctx, id, state)
	return err
}

// WaitAny waits until call id has entered one of want (now or before) and
// returns the first of want, in the order given, that it entered.
func (t *Tracker) WaitAny(ctx context.Context, id int64, want ...calld.State) (calld.State, error) {
	var mask uint16
	for _, s := range want {
		bit, ok := states[s]
		if !ok {
			return "", fmt.Errorf("unknown state %q", s)
		}
		mask |= bit
	}
	first := func(got uint16) calld.State {
		for _, s := range want {
			if got&states[s] != 0 {
				return s
			}
		}
		return ""
	}
	t.mu.Lock()
	if got := t.reached[id]; got&mask != 0 {
		t.mu.Unlock()
		return first(got), nil
	}
	ch := make(chan struct{})
	t.waiters[id] = append(t.waiters[id], stateWaiter{bit: mask, ch: ch})
	t.mu.Unlock()
	select {
	case <-ch:
		t.mu.Lock()
		got := t.reached[id]
		t.mu.Unlock()
		return first(got), nil
	case <-ctx.Done():
		return "", fmt.Errorf("call %d did not reach %v: %w", id, want, ctx.Err())
	}
}

// WaitEnded waits until at least n distinct calls have ended.
func (t *Tracker) WaitEnded(ctx context.Context, n int) error {
	t.mu.Lock()
	if t.ended >= n {
		t.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	t.endedW = append(t.endedW, countWaiter{n: n, ch: ch})
	got := t.ended
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d calls ended, want %d (ended %d when the wait began): %w", t.Ended(), n, got, ctx.Err())
	}
}

// Reached reports whether call id has entered state.
func (t *Tracker) Reached(id int64, state calld.State) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reached[id]&states[state] != 0
}

// Ended is the number of calls seen ending.
func (t *Tracker) Ended() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ended
}

// LastSeq is the seq of the last event seen.
func (t *Tracker) LastSeq() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastSeq
}

// Drops is how many times the daemon dropped the stream as too slow.
func (t *Tracker) Drops() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.drops
}

// Err is the first inconsistency seen in the stream (nil if none).
func (t *Tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
