package updates

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	gotdupdates "github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
)

// benchStream yields pushed Updates in order from base: pts updates as
// updateShort, and every 10th an updates{seq} carrying an updatePhoneCall.
// Each Updates carries exactly one update, so "applied" counts are equal.
// Updates are built on the fly (as the MTProto decoder would) rather than
// kept in a b.N-long slice whose GC scanning would dominate both sides.
type benchStream struct{ i, pts, seq int }

func newBenchStream() *benchStream { return &benchStream{pts: base.Pts, seq: base.Seq} }

func (s *benchStream) next() tg.UpdatesClass {
	s.i++
	if s.i%10 == 0 {
		s.seq++
		return &tg.Updates{Updates: []tg.UpdateClass{call(int64(s.i))}, Seq: s.seq, Date: base.Date + s.i}
	}
	s.pts++
	return &tg.UpdateShort{Update: newMsg(s.pts, 1), Date: base.Date + s.i}
}

// BenchmarkApply measures updates applied per second (an update counts when
// the handler sees it) for the same in-order stream through this engine and
// through gotd v0.93.0's telegram/updates Manager.
//
//	go test -run '^$' -bench BenchmarkApply -benchmem ./updates
func BenchmarkApply(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		stream := newBenchStream()
		e := New(base, t0, Options{})
		now := t0
		applied := 0
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			now = now.Add(time.Microsecond)
			o := e.Push(stream.next(), now)
			applied += len(o.Dispatch)
		}
		b.StopTimer()
		if applied != b.N {
			b.Fatalf("applied %d of %d", applied, b.N)
		}
		b.ReportMetric(float64(applied)/b.Elapsed().Seconds(), "updates/s")
	})
	b.Run("gotd", func(b *testing.B) {
		stream := newBenchStream()
		var applied atomic.Int64
		done := make(chan struct{})
		target := int64(b.N)
		m := gotdupdates.New(gotdupdates.Config{
			Handler: handlerFunc(func(_ context.Context, u tg.UpdatesClass) error {
				n := int64(0)
				if us, ok := u.(*tg.Updates); ok {
					n = int64(len(us.Updates))
				}
				if applied.Add(n) == target {
					close(done)
				}
				return nil
			}),
		})
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		runErr := make(chan error, 1)
		go func() {
			runErr <- m.Run(ctx, fakeAPI{}, 1, gotdupdates.AuthOptions{OnStart: func(context.Context) { close(started) }})
		}()
		<-started
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := m.Handle(ctx, stream.next()); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("gotd applied %d of %d", applied.Load(), b.N)
		}
		b.StopTimer()
		b.ReportMetric(float64(applied.Load())/b.Elapsed().Seconds(), "updates/s")
		cancel()
		if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
			b.Fatal(err)
		}
	})
}

type handlerFunc func(ctx context.Context, u tg.UpdatesClass) error

func (f handlerFunc) Handle(ctx context.Context, u tg.UpdatesClass) error { return f(ctx, u) }

// fakeAPI answers gotd's Manager: getState with base, getDifference empty.
type fakeAPI struct{}

func (fakeAPI) UpdatesGetState(context.Context) (*tg.UpdatesState, error) {
	return &tg.UpdatesState{Pts: base.Pts, Qts: base.Qts, Seq: base.Seq, Date: base.Date}, nil
}

func (fakeAPI) UpdatesGetDifference(context.Context, *tg.UpdatesGetDifferenceRequest) (tg.UpdatesDifferenceClass, error) {
	return &tg.UpdatesDifferenceEmpty{Date: base.Date, Seq: base.Seq}, nil
}

func (fakeAPI) UpdatesGetChannelDifference(context.Context, *tg.UpdatesGetChannelDifferenceRequest) (tg.UpdatesChannelDifferenceClass, error) {
	return nil, errors.New("no channels in this benchmark")
}

// BenchmarkHeldRun is one gap filled behind n held updates, handed over
// in the order given (descending: the worst for a drain that rescans the
// held ones; shuffled: gotd's order in a burst), seq and pts alike.
//
//	go test -run '^$' -bench BenchmarkHeldRun -benchmem ./internal/updates
func BenchmarkHeldRun(b *testing.B) {
	const n = 5000
	for _, order := range []string{"descending", "shuffled"} {
		ks := make([]int, n)
		for i := range ks {
			ks[i] = n + 1 - i // n+1 .. 2
		}
		if order == "shuffled" {
			rng := rand.New(rand.NewPCG(1, 2))
			rng.Shuffle(n, func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
		}
		for _, box := range []struct {
			name string
			nth  func(k int) tg.UpdatesClass
		}{
			{"seq", func(k int) tg.UpdatesClass { return ups(base.Seq+k, base.Date, call(int64(k))) }},
			{"pts", func(k int) tg.UpdatesClass { return ups(0, base.Date, newMsg(base.Pts+k, 1)) }},
		} {
			b.Run(order+"/"+box.name, func(b *testing.B) {
				ups := make([]tg.UpdatesClass, n+1)
				for i, k := range ks {
					ups[i] = box.nth(k)
				}
				ups[n] = box.nth(1)
				for b.Loop() {
					e := New(base, t0, Options{})
					var got int
					for _, u := range ups {
						got += len(e.Push(u, t0).Dispatch)
					}
					if got != n+1 {
						b.Fatalf("%d dispatched, want %d", got, n+1)
					}
				}
			})
		}
	}
}
