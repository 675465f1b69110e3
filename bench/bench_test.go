package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// full selects the sizes: 10k live calls, 100k ended calls in the
// store, 100k calls processed. The default sizes keep one run of the
// whole suite within about three minutes on a 2-core machine.
var full = flag.Bool("bench.full", false, "run the large sizes (10k live calls, 100k stored/processed calls)")

// sizes of the memory and restart benchmarks.
func sizes() (live, stored, processed int) {
	if *full {
		return 10000, 100000, 100000
	}
	return 10000, 100000, 5000
}

// benchCtx bounds one benchmark's waits.
func benchCtx(b *testing.B, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	b.Cleanup(cancel)
	return ctx
}

// follow starts a Tracker on d's event stream for the rest of the
// benchmark.
func follow(b *testing.B, d *Daemon) *Tracker {
	ctx, cancel := context.WithCancel(context.Background())
	tr := NewTracker()
	done := make(chan struct{})
	go func() { tr.Follow(ctx, d.Client); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return tr
}

// percentiles reports p50 and p99 of lat (sorted in place).
func percentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 {
		i := int(q * float64(len(lat)))
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return float64(lat[i].Nanoseconds())
	}
	b.ReportMetric(p(0.50), "p50-ns")
	b.ReportMetric(p(0.99), "p99-ns")
}

// batch is how many calls the latency benchmarks prepare at a time (with
// the timer stopped).
const batch = 64

// BenchmarkDiscardLatency: one phone.discardCall, end to end through the
// daemon (control socket -> manager decision -> commit -> RPC -> Updates
// applied -> commit -> response) against the bare gotd client's round trip
// to the same simulator. Every discarded call was ringing.
func BenchmarkDiscardLatency(b *testing.B) {
	srv := NewSim(b)
	peer := srv.AddPeer("latency")

	b.Run("bare", func(b *testing.B) {
		ctx := benchCtx(b, 10*time.Minute)
		opts := srv.ClientOptions()
		opts.SessionStorage = &session.StorageMemory{}
		client := telegram.NewClient(1, "hash", opts)
		api := startBare(b, client)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for done := 0; done < b.N; {
			b.StopTimer()
			n := min(batch, b.N-done)
			ids := make([]int64, n)
			hashes := make([]int64, n)
			for i := range ids {
				id, err := srv.IncomingCall(peer, false)
				if err != nil {
					b.Fatal(err)
				}
				info, _ := srv.Call(id)
				ids[i], hashes[i] = id, info.AccessHash
			}
			b.StartTimer()
			for i := range ids {
				t0 := time.Now()
				if _, err := api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
					Peer:   tg.InputPhoneCall{ID: ids[i], AccessHash: hashes[i]},
					Reason: &tg.PhoneCallDiscardReasonBusy{},
				}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			done += n
		}
		b.StopTimer()
		percentiles(b, lat)
	})

	b.Run("daemon", func(b *testing.B) { daemonDiscards(b, srv, peer, b.TempDir()) })
	// The same with the state file on tmpfs, where fsync costs nothing:
	// the difference to "daemon" is the cost of durability.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		b.Run("daemon-tmpfs", func(b *testing.B) {
			dir, err := os.MkdirTemp("/dev/shm", "calld-bench-")
			if err != nil {
				b.Skip(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			daemonDiscards(b, srv, peer, dir)
		})
	}
	// One 4 KiB write + fdatasync on the state file's filesystem: a bbolt
	// commit does two (data pages, then the meta page).
	b.Run("fdatasync", func(b *testing.B) {
		f, err := os.Create(b.TempDir() + "/sync")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		page := make([]byte, 4096)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if _, err := f.WriteAt(page, int64(i%16)*4096); err != nil {
				b.Fatal(err)
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		percentiles(b, lat)
	})
}

// daemonDiscards times Discard through a daemon whose state is in dir.
func daemonDiscards(b *testing.B, srv *sim.Server, peer int64, dir string) {
	ctx := benchCtx(b, 10*time.Minute)
	d := StartDaemon(b, srv, Config(dir), nil)
	tr := follow(b, d)
	// lat is the whole round trip; toRPC the part until the simulator
	// received phone.discardCall (socket, decision, first commit, send).
	lat := make([]time.Duration, 0, b.N)
	toRPC := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(batch, b.N-done)
		ids := make([]int64, n)
		for i := range ids {
			id, err := srv.IncomingCall(peer, false)
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = id
		}
		for _, id := range ids {
			if err := tr.WaitState(ctx, id, calld.StateRinging); err != nil {
				b.Fatal(err)
			}
		}
		starts := make(map[int64]time.Time, n)
		b.StartTimer()
		for _, id := range ids {
			t0 := time.Now()
			c, err := d.Client.Discard(ctx, id, calld.ReasonAuto)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			starts[id] = t0
			if c.State != calld.StateEnded {
				b.Fatalf("call %d: discard answered state %s", id, c.State)
			}
		}
		b.StopTimer()
		reqs := srv.Requests()
		for i := len(reqs) - 1; i >= 0 && len(starts) > 0; i-- {
			if r, ok := reqs[i].Req.(*tg.PhoneDiscardCallRequest); ok {
				if t0, ok := starts[r.Peer.ID]; ok {
					toRPC = append(toRPC, reqs[i].At.Sub(t0))
					delete(starts, r.Peer.ID)
				}
			}
		}
		done += n
	}
	b.StopTimer()
	percentiles(b, lat)
	if len(toRPC) > 0 {
		slices.Sort(toRPC)
		b.ReportMetric(float64(toRPC[len(toRPC)/2].Nanoseconds()), "p50-to-rpc-ns")
	}
}

// startBare runs a plain gotd client until the benchmark ends and returns
// its API once connected.
func startBare(b *testing.B, client *telegram.Client) *tg.Client {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- client.Run(ctx, func(ctx context.Context) error {
			close(ready)
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	b.Cleanup(func() { cancel(); <-done })
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-ready:
	case err := <-done:
		b.Fatalf("bare client: %v", err)
	case <-t.C:
		b.Fatal("bare client not connected after 30s")
	}
	// The first RPC carries initConnection; keep it out of the timings.
	if _, err := client.API().UpdatesGetState(ctx); err != nil {
		b.Fatal(err)
	}
	return client.API()
}

// BenchmarkIncomingThroughput: incoming calls the daemon tracks and refuses
// (policy incoming = "reject": waiting -> hanging_up -> ended, each step
// committed) with `concurrency` calls in flight. One op is one call, from
// the simulator's push until its end is in the journal.
func BenchmarkIncomingThroughput(b *testing.B) {
	srv := NewSim(b)
	peer := srv.AddPeer("throughput")
	cfg := Config(b.TempDir())
	cfg.Policy.Incoming = config.IncomingReject
	d := StartDaemon(b, srv, cfg, nil)
	tr := follow(b, d)
	for _, conc := range []int{1, 16, 256} {
		b.Run("concurrency="+strconv.Itoa(conc), func(b *testing.B) {
			ctx := benchCtx(b, 10*time.Minute)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, conc)
			b.ResetTimer()
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						id, err := srv.IncomingCall(peer, false)
						if err == nil {
							err = tr.WaitState(ctx, id, calld.StateEnded)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
	if err := tr.Err(); err != nil {
		b.Fatal(err)
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// vmRSS is this process's resident set size (VmRSS of /proc/self/status).
func vmRSS(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// perCall reports (after-before)/n under unit.
func perCall(b *testing.B, before, after uint64, n int, unit string) float64 {
	v := (float64(after) - float64(before)) / float64(n)
	b.ReportMetric(v, unit)
	return v
}

// BenchmarkMemory measures the daemon's memory per call. The simulator
// runs in the same process: calld-heap-B/call counts only the heap
// allocated under calld's own packages (memory profile, see CalldHeap);
// heap-B/call is the whole process, daemon-heap-B/call that minus the
// simulator's heap per call measured on a separate simulator with no
// client (which misses the simulator's per-discard history).
//
//   - live=N: N incoming calls ringing at once.
//   - stored=N: a daemon started on a store holding N ended calls.
//   - processed=N: heap still held after N calls went through the daemon
//     and ended (what a long-running daemon keeps per past call).
func BenchmarkMemory(b *testing.B) {
	live, stored, processed := sizes()
	b.Run("live="+strconv.Itoa(live), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			memLive(b, live)
		}
	})
	b.Run("stored="+strconv.Itoa(stored), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			memStored(b, stored)
		}
	})
	b.Run("processed="+strconv.Itoa(processed), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			memProcessed(b, processed)
		}
	})
}

// simHeapPerCall is the simulator's own heap per incoming call.
func simHeapPerCall(b *testing.B, n int) float64 {
	srv, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		b.Fatal(err)
	}
	peer := srv.AddPeer("mem")
	before := heapInUse()
	for i := 0; i < n; i++ {
		if _, err := srv.IncomingCall(peer, false); err != nil {
			b.Fatal(err)
		}
	}
	after := heapInUse()
	runtime.KeepAlive(srv)
	return (float64(after) - float64(before)) / float64(n)
}

// incoming makes n incoming calls from `workers` goroutines and returns
// their ids.
func incoming(b *testing.B, srv *sim.Server, peer int64, n, workers int) []int64 {
	ids := make([]int64, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				id, err := srv.IncomingCall(peer, false)
				if err != nil {
					failed.Store(err)
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return ids
}

func memLive(b *testing.B, n int) {
	b.StopTimer()
	simPer := simHeapPerCall(b, n)
	b.StartTimer()
	srv := NewSim(b)
	peer := srv.AddPeer("live")
	b.Cleanup(ProfileHeap())
	d := StartDaemon(b, srv, Config(b.TempDir()), nil)
	tr := follow(b, d)
	ctx := benchCtx(b, 10*time.Minute)
	own0 := CalldHeap()
	heap0, rss0 := heapInUse(), vmRSS(b)
	ids := incoming(b, srv, peer, n, 4)
	for _, id := range ids {
		if err := tr.WaitState(ctx, id, calld.StateRinging); err != nil {
			b.Fatal(err)
		}
	}
	st, err := d.Client.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if st.Calls.Live != n {
		b.Fatalf("%d live calls, want %d", st.Calls.Live, n)
	}
	heap1, rss1 := heapInUse(), vmRSS(b)
	b.ReportMetric(float64(CalldHeap()-own0)/float64(n), "calld-heap-B/call")
	total := perCall(b, heap0, heap1, n, "heap-B/call")
	b.ReportMetric(simPer, "sim-heap-B/call")
	b.ReportMetric(total-simPer, "daemon-heap-B/call")
	perCall(b, rss0, rss1, n, "rss-B/call")
	b.StopTimer()
	if err := d.Stop(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

func memStored(b *testing.B, n int) {
	b.StopTimer()
	srv := NewSim(b)
	cfg := Config(b.TempDir())
	prepareStore(b, srv, cfg, n)
	b.StartTimer()
	heap0, rss0 := heapInUse(), vmRSS(b)
	d := StartDaemon(b, srv, cfg, nil)
	ctx := benchCtx(b, time.Minute)
	st, err := d.Client.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if st.Calls.Total != n {
		b.Fatalf("%d calls in the store, want %d", st.Calls.Total, n)
	}
	heap1, rss1 := heapInUse(), vmRSS(b)
	perCall(b, heap0, heap1, n, "heap-B/call")
	perCall(b, rss0, rss1, n, "rss-B/call")
	b.ReportMetric(float64(heap1)-float64(heap0), "heap-B")
	b.ReportMetric(float64(rss1)-float64(rss0), "rss-B")
	b.StopTimer()
	if err := d.Stop(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

func memProcessed(b *testing.B, n int) {
	srv := NewSim(b)
	peer := srv.AddPeer("processed")
	cfg := Config(b.TempDir())
	cfg.Policy.Incoming = config.IncomingReject
	b.Cleanup(ProfileHeap())
	d := StartDaemon(b, srv, cfg, nil)
	tr := follow(b, d)
	ctx := benchCtx(b, 20*time.Minute)
	// Warm up (first RPCs, buffers), then measure.
	warm := incoming(b, srv, peer, 100, 4)
	if err := tr.WaitEnded(ctx, len(warm)); err != nil {
		b.Fatal(err)
	}
	simPer := simHeapPerCall(b, n)
	own0 := CalldHeap()
	heap0, rss0 := heapInUse(), vmRSS(b)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				id, err := srv.IncomingCall(peer, false)
				if err == nil {
					err = tr.WaitState(ctx, id, calld.StateEnded)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	heap1, rss1 := heapInUse(), vmRSS(b)
	b.ReportMetric(float64(CalldHeap()-own0)/float64(n), "calld-heap-B/call")
	total := perCall(b, heap0, heap1, n, "heap-B/call")
	b.ReportMetric(simPer, "sim-heap-B/call")
	b.ReportMetric(total-simPer, "daemon-heap-B/call")
	perCall(b, rss0, rss1, n, "rss-B/call")
	b.StopTimer()
	if err := d.Stop(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// prepareStore runs a daemon once on cfg's empty store (MTProto session,
// updates state), stops it, and fills the store with n ended incoming
// calls and their journal (four events each), as a daemon would have
// written them.
func prepareStore(b *testing.B, srv *sim.Server, cfg config.Config, n int) {
	d, err := Start(srv, cfg, nil, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Stop(); err != nil {
		b.Fatal(err)
	}
	if err := FillStore(cfg.State.Path, n, time.Now().Add(-24*time.Hour)); err != nil {
		b.Fatal(err)
	}
}

// FillStore appends n ended incoming calls (ids 1<<40+i) and their
// journals to the state file at path, in transactions of 5000 calls. The
// records have the shape the manager writes: created, ringing, refused
// by the user with reason busy.
func FillStore(path string, n int, start time.Time) error {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	const per = 5000
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		err := db.Update(func(tx *store.Tx) error {
			for i := lo; i < hi; i++ {
				id := int64(1<<40 + i)
				at := start.Add(time.Duration(i) * time.Second).UTC()
				ring, end := at.Add(100*time.Millisecond), at.Add(5*time.Second)
				c := calld.Call{
					ID: id, AccessHash: id * 7919, Direction: calld.DirectionIncoming, PeerID: 500000 + int64(i%1000),
					State: calld.StateEnded, CreatedAt: &at, RingingAt: &ring, EndedAt: &end,
					Reason: calld.ReasonBusy, EndedBy: calld.EndedByLocal, Connections: []calld.Connection{},
					Date: int(at.Unix()), AdminID: 500000 + int64(i%1000), ParticipantID: sim.SelfID,
				}
				rec, err := json.Marshal(c)
				if err != nil {
					return err
				}
				if err := tx.PutCall(id, rec, false); err != nil {
					return err
				}
				steps := [][2]calld.State{{"", calld.StateWaiting}, {calld.StateWaiting, calld.StateRinging}, {calld.StateRinging, calld.StateHangingUp}, {calld.StateHangingUp, calld.StateEnded}}
				for k, s := range steps {
					ev := calld.Event{At: at.Add(time.Duration(k) * time.Second), Event: "call.state", CallID: id, From: string(s[0]), To: string(s[1])}
					if s[1] == calld.StateEnded {
						ev.Reason = string(calld.ReasonBusy)
					}
					if err := tx.AppendEvent(&ev); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill %s: %w", path, err)
		}
	}
	return nil
}

// BenchmarkRestart: time from Run to Ready for a daemon whose store holds
// calls=N ended calls (plus its session and updates state), against the
// same simulator. One op is one start; the stop is not timed.
func BenchmarkRestart(b *testing.B) {
	_, stored, _ := sizes()
	for _, n := range []int{0, stored} {
		b.Run("calls="+strconv.Itoa(n), func(b *testing.B) {
			b.StopTimer()
			srv := NewSim(b)
			cfg := Config(b.TempDir())
			prepareStore(b, srv, cfg, n)
			var ready []time.Duration
			for i := 0; i < b.N; i++ {
				b.StartTimer()
				d, err := Start(srv, cfg, nil, time.Minute)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				ready = append(ready, d.ReadyAfter)
				if err := d.Stop(); err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(ready)
			b.ReportMetric(float64(ready[len(ready)/2].Milliseconds()), "p50-ready-ms")
		})
	}
}

// BenchmarkShuffledBurst: a burst of incoming calls (5,000) refused by
// policy, pushed from 64 goroutines at once with the simulator swapping
// every pair of pushes, so the daemon receives them out of order while it
// is busy with its backlog. Every push arrives: the daemon must not ask
// for the difference during the burst (getDifference/burst is 0), and
// every call ends.
func BenchmarkShuffledBurst(b *testing.B) {
	const n, workers = 5000, 64
	srv := NewSim(b)
	peer := srv.AddPeer("shuffled")
	cfg := Config(b.TempDir())
	cfg.Policy.Incoming = config.IncomingReject
	d := StartDaemon(b, srv, cfg, nil)
	tr := follow(b, d)
	ctx := benchCtx(b, 10*time.Minute)
	settled(ctx, b, d, srv)
	gds := 0
	for i := 0; i < b.N; i++ {
		ended := tr.Ended()
		gd := srv.Count("updates.getDifference")
		srv.ReorderPushes(true)
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= n {
					if _, err := srv.IncomingCall(peer, false); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		srv.ReorderPushes(false)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		if err := tr.WaitEnded(ctx, ended+n); err != nil {
			b.Fatal(err)
		}
		gds += srv.Count("updates.getDifference") - gd
	}
	b.ReportMetric(float64(gds)/float64(b.N), "getDifference/burst")
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "calls/s")
	if gds > 0 {
		b.Errorf("%d getDifference during %d bursts whose pushes all arrived", gds, b.N)
	}
}

// settled waits until the daemon is connected with the server's seq and
// the getDifference its connection asks for has run (it may start after
// Ready): a burst measured from then on sees only its own.
func settled(ctx context.Context, b *testing.B, d *Daemon, srv *sim.Server) {
	for {
		st, err := d.Client.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_, _, seq, _ := srv.State()
		if st.Telegram.Connected && st.Updates.Seq == seq {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = srv.WaitCount(wctx, "updates.getDifference", 1) // none if the connection came before the loop ran
	for srv.Count("updates.getDifference") != srv.Executed("updates.getDifference") {
		time.Sleep(10 * time.Millisecond)
	}
}
