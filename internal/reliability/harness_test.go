package reliability

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/bench"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/sim"
)

// full reports whether CALLD_RELIABILITY=full asks for the large sizes.
func full() bool { return os.Getenv("CALLD_RELIABILITY") == "full" }

// size picks the default or the full size.
func size(def, large int) int {
	if full() {
		return large
	}
	return def
}

// testCtx bounds a test's waits.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// env is a simulator, an in-process daemon and a journal tracker.
type env struct {
	t     *testing.T
	sim   *sim.Server
	cfg   config.Config
	d     *bench.Daemon
	tr    *bench.Tracker
	logs  *syncBuffer
	peers []int64
}

// newEnv starts a simulator with a few peers and a daemon whose config
// mod may change.
func newEnv(t *testing.T, mod func(*config.Config)) *env {
	srv := bench.NewSim(t)
	cfg := bench.Config(t.TempDir())
	if mod != nil {
		mod(&cfg)
	}
	return startEnv(t, srv, cfg)
}

func startEnv(t *testing.T, srv *sim.Server, cfg config.Config) *env {
	e := &env{t: t, sim: srv, cfg: cfg, logs: &syncBuffer{}}
	for i := 0; i < 8; i++ {
		e.peers = append(e.peers, srv.AddPeer(fmt.Sprintf("peer%d", i)))
	}
	e.d = bench.StartDaemon(t, srv, cfg, e.logs)
	e.tr = bench.NewTracker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.tr.Follow(ctx, e.d.Client); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Lines returns the lines that contain s.
func (b *syncBuffer) Lines(s string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []byte
	for _, line := range bytes.Split(b.buf.Bytes(), []byte("\n")) {
		if bytes.Contains(line, []byte(s)) {
			out = append(append(out, line...), '\n')
		}
	}
	return string(out)
}

func (b *syncBuffer) Contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), []byte(s))
}

// eventually polls cond every 10 ms until it holds or ctx ends. It is for
// conditions that no event announces (the updates state, a log line).
func eventually(ctx context.Context, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// kinds of calls the load drives.
const (
	kindDiscard   = iota // incoming, ringing, we discard through the API
	kindPeer             // incoming, ringing, the caller hangs up
	kindElsewhere        // incoming, ringing, accepted on another device
	kindOutgoing         // we call, the peer answers, keys exchanged, we hang up
	kinds
)

// loadResult counts what a load run did.
type loadResult struct {
	calls    atomic.Int64
	apiErrs  atomic.Int64 // control API errors that were retried or tolerated
	mu       sync.Mutex
	errKinds map[string]int // error code -> count
	outgoing atomic.Int64
	earlyEnd atomic.Int64 // outgoing calls that ended before they were active
	ids      sync.Map     // call id -> kind
}

// tolerated counts an API error of a fault run.
func (r *loadResult) tolerated(err error) {
	r.apiErrs.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errKinds == nil {
		r.errKinds = map[string]int{}
	}
	r.errKinds[calld.ErrorCode(err)]++
}

// load drives n calls with `workers` goroutines, kinds in rotation, and
// waits for each to end. tolerate lets API errors through (fault runs):
// the call must still end.
func (e *env) load(ctx context.Context, n, workers int, tolerate bool) (*loadResult, error) {
	res := &loadResult{}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := e.oneCall(ctx, int(i), res, tolerate); err != nil {
					errs <- fmt.Errorf("call #%d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return res, err
	}
	return res, nil
}

func (e *env) oneCall(ctx context.Context, i int, res *loadResult, tolerate bool) error {
	peer := e.peers[i%len(e.peers)]
	kind := i % kinds
	if kind == kindOutgoing {
		return e.outgoing(ctx, i, res, tolerate)
	}
	id, err := e.sim.IncomingCall(peer, false)
	if err != nil {
		return err
	}
	res.ids.Store(id, kind)
	res.calls.Add(1)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	got, err := e.tr.WaitAny(wctx, id, calld.StateRinging, calld.StateEnded)
	cancel()
	if err != nil {
		now, _ := e.d.Client.Call(ctx, id)
		return fmt.Errorf("incoming call %d stuck in %q: %w; its log:\n%s", id, now.State, err, e.logs.Lines(itoa64(id)))
	}
	if got == calld.StateEnded {
		return nil
	}
	switch kind {
	case kindDiscard:
		c, err := e.d.Client.Discard(ctx, id, calld.ReasonAuto)
		if err != nil {
			if !tolerate {
				return fmt.Errorf("discard %d: %w", id, err)
			}
			res.tolerated(err)
		} else if c.State != calld.StateEnded {
			return fmt.Errorf("discard %d answered %s", id, c.State)
		}
	case kindPeer:
		if err := e.sim.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
			return err
		}
	case kindElsewhere:
		if err := e.sim.AcceptedElsewhere(id); err != nil {
			return err
		}
	}
	return e.tr.WaitState(ctx, id, calld.StateEnded)
}

// outgoing places a call to a peer that answers, waits until it is active
// and hangs up.
func (e *env) outgoing(ctx context.Context, i int, res *loadResult, tolerate bool) error {
	peer := fmt.Sprintf("@peer%d", i%len(e.peers))
	var c calld.Call
	var err error
	for try := 0; ; try++ {
		c, err = e.d.Client.Place(ctx, peer, false)
		if err == nil {
			break
		}
		if !tolerate || try == 20 || ctx.Err() != nil {
			return fmt.Errorf("place %s: %w", peer, err)
		}
		res.tolerated(err)
	}
	res.ids.Store(c.ID, kindOutgoing)
	res.calls.Add(1)
	res.outgoing.Add(1)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	got, err := e.tr.WaitAny(wctx, c.ID, calld.StateActive, calld.StateEnded)
	cancel()
	if err != nil {
		now, _ := e.d.Client.Call(ctx, c.ID)
		return fmt.Errorf("outgoing call %d stuck in %s: %w; its log:\n%s", c.ID, now.State, err, e.logs.Lines(itoa64(c.ID)))
	}
	if got == calld.StateEnded {
		// Ended before it was active (a fault during the key exchange).
		res.earlyEnd.Add(1)
		return nil
	}
	if _, err := e.d.Client.Discard(ctx, c.ID, calld.ReasonAuto); err != nil {
		if !tolerate {
			return fmt.Errorf("discard %d: %w", c.ID, err)
		}
		res.tolerated(err)
	}
	return e.tr.WaitState(ctx, c.ID, calld.StateEnded)
}

// journal reads the daemon's whole journal.
func journal(ctx context.Context, c *client.Client) ([]calld.Event, error) {
	var evs []calld.Event
	err := c.Events(ctx, client.EventsOptions{Replay: true}, func(ev calld.Event) error {
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}

// checkConsistent checks the daemon against the simulator once the load
// is over: the journal is complete and every call in it ended, the store
// holds no live call, every call the load made is in the store and ended,
// and the updates state equals the simulator's.
func (e *env) checkConsistent(ctx context.Context, res *loadResult) JournalReport {
	e.t.Helper()
	c := e.d.Client
	if err := e.tr.Err(); err != nil {
		e.t.Fatal(err)
	}
	if err := eventually(ctx, "updates state equal to the simulator's", func() (bool, error) {
		st, err := c.Status(ctx)
		if err != nil {
			return false, err
		}
		pts, qts, seq, _ := e.sim.State()
		u := st.Updates
		return u.Pts == pts && u.Qts == qts && u.Seq == seq,
			fmt.Errorf("calld pts=%d qts=%d seq=%d, sim pts=%d qts=%d seq=%d", u.Pts, u.Qts, u.Seq, pts, qts, seq)
	}); err != nil {
		e.t.Fatal(err)
	}
	evs, err := journal(ctx, c)
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := CheckJournal(evs)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(rep.Live) > 0 {
		e.t.Fatalf("%d calls did not end, e.g. %d", len(rep.Live), rep.Live[0])
	}
	calls, err := c.Calls(ctx, true)
	if err != nil {
		e.t.Fatal(err)
	}
	stored := map[int64]calld.Call{}
	for _, rec := range calls {
		if rec.State != calld.StateEnded {
			e.t.Errorf("call %d is %s in the store", rec.ID, rec.State)
		}
		stored[rec.ID] = rec
	}
	if res != nil {
		missing := 0
		res.ids.Range(func(k, _ any) bool {
			if _, ok := stored[k.(int64)]; !ok {
				missing++
			}
			return true
		})
		if missing > 0 {
			e.t.Errorf("%d calls of the load are not in the store", missing)
		}
	}
	local := 0
	for _, info := range e.sim.Calls() {
		rec, ours := stored[info.ID]
		if !ours || info.State == sim.StateDiscarded || info.State == sim.StateElsewhere {
			continue
		}
		if rec.EndedBy == calld.EndedByError {
			// DESIGN: a discard that keeps failing past the retry
			// budget is finalised locally (ended, error).
			local++
			continue
		}
		e.t.Errorf("call %d is %s at the simulator but %s (%s) in the store", info.ID, info.State, rec.State, rec.EndedBy)
	}
	if local > 0 {
		e.t.Logf("%d calls finalised locally (ended_by error) while still live at the simulator", local)
	}
	if rep.Calls != len(stored) {
		e.t.Errorf("journal has %d calls, the store %d", rep.Calls, len(stored))
	}
	return rep
}
