package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTransition measures durable persisted transitions per second.
// One transition is one transaction's worth of a call step: AppendEvent +
// PutCall + SetUpdatesState, run as one Update (one commit, its fsyncs)
// per transition. b.N transitions are spread over the writers.
//
// Each writer drives calls through a life like the daemon's: a random
// 64-bit call id (as Telegram's are), five steps (waiting, ringing,
// hanging_up, ended, then a late duplicate), live until it ends.
func BenchmarkTransition(b *testing.B) {
	for _, mode := range []string{"update"} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				db, err := Open(filepath.Join(b.TempDir(), "calld.db"), Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				run := db.Update
				txid := func() int {
					var id int
					_ = db.View(func(tx *Tx) error { id = tx.tx.ID(); return nil })
					return id
				}
				tx0 := txid()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rng := rand.New(rand.NewPCG(uint64(w), 1))
						var id int64
						for k := 0; next.Add(1) <= int64(b.N); k++ {
							step := k % len(lifeSteps)
							if step == 0 {
								id = int64(rng.Uint64())
							}
							st := lifeSteps[step]
							if err := run(func(tx *Tx) error {
								_, err := transition(tx, id, st.state, st.live)
								return err
							}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				txs := txid() - tx0
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "transitions/s")
				b.ReportMetric(float64(b.N)/float64(max(txs, 1)), "transitions/commit")
			})
		}
	}
}

// lifeSteps are the transitions of one call in BenchmarkTransition.
var lifeSteps = []struct {
	state string
	live  bool
}{{"waiting", true}, {"ringing", true}, {"hanging_up", true}, {"ended", false}, {"ended", false}}

// BenchmarkFsync measures the disk under the benchmarks: one 4 KiB write
// at a fixed offset plus fsync, the floor of a durable commit (bbolt
// syncs twice per commit: data pages, then the meta page).
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(page, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures Open (and the Close after it, which writes
// nothing when nothing was committed) of an existing file: stop=clean
// after a clean Close (no page read but a checksum of the file),
// stop=unclean as a crash leaves it (the validation reads every page and
// runs bbolt's consistency check, and bbolt rebuilds its freelist).
func BenchmarkOpen(b *testing.B) {
	for _, events := range []int{1000, 100000} {
		for _, stop := range []string{"clean", "unclean"} {
			b.Run(fmt.Sprintf("events=%d/stop=%s", events, stop), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "calld.db")
				db, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				for done := 0; done < events; done += 10000 {
					populate(b, db, min(10000, events-done))
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				st, _ := os.Stat(path)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if stop == "unclean" {
						b.StopTimer()
						eraseTrailer(b, path)
						b.StartTimer()
					}
					db, err := Open(path, Options{})
					if err != nil {
						b.Fatal(err)
					}
					if db.walked != (stop == "unclean") {
						b.Fatalf("walked = %v", db.walked)
					}
					if err := db.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
			})
		}
	}
}

// eraseTrailer zeroes the clean-stop trailers of both meta pages: the
// file is then as a crash after a commit leaves it.
func eraseTrailer(b *testing.B, path string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for pg := int64(0); pg < 2; pg++ {
		if _, err := f.WriteAt(make([]byte, cleanSize), pg*4096+cleanOffset); err != nil {
			b.Fatal(err)
		}
	}
}
