package store

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/calld/calld"
)

func TestCommitConcurrentWriters(t *testing.T) {
	tests := []struct {
		name    string
		writers int
		each    int
		failAt  int // every failAt-th commit of a writer fails (0: none)
	}{
		{"one writer", 1, 30, 0},
		{"16 writers", 16, 25, 0},
		{"16 writers, some fail", 16, 25, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openT(t, tempDB(t), Options{})
			var mu sync.Mutex
			committed := map[uint64]int64{} // seq -> call
			var failedCalls []int64
			var wg sync.WaitGroup
			for w := 0; w < tc.writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < tc.each; k++ {
						id := int64(w*1000 + k + 1)
						fail := tc.failAt > 0 && k%tc.failAt == tc.failAt-1
						var seq uint64
						err := db.Commit(func(tx *Tx) error {
							var err error
							if seq, err = transition(tx, id, "active", true); err != nil {
								return err
							}
							if fail {
								return fmt.Errorf("deliberate failure of call %d", id)
							}
							return nil
						})
						mu.Lock()
						switch {
						case fail && err != nil && strings.Contains(err.Error(), "deliberate"):
							failedCalls = append(failedCalls, id)
						case fail:
							t.Errorf("call %d: Commit err = %v, want the deliberate failure", id, err)
						case err != nil:
							t.Errorf("call %d: Commit: %v", id, err)
						default:
							if prev, dup := committed[seq]; dup {
								t.Errorf("seq %d given to calls %d and %d", seq, prev, id)
							}
							committed[seq] = id
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()

			// The journal holds exactly the committed events, with seqs
			// 1..N and no gap; each committed call has its record.
			got := seqs(t, db, 0)
			if len(got) != len(committed) {
				t.Fatalf("journal has %d events, %d commits succeeded", len(got), len(committed))
			}
			for i, s := range got {
				if s != uint64(i+1) {
					t.Fatalf("journal seqs not contiguous at %d: %d", i, s)
				}
				if _, ok := committed[s]; !ok {
					t.Fatalf("seq %d in the journal was not reported by a Commit", s)
				}
			}
			err := db.View(func(tx *Tx) error {
				for seq, id := range committed {
					n := 0
					if err := tx.CallEvents(id, func(e calld.Event) error {
						n++
						if e.Seq != seq {
							t.Errorf("call %d event seq %d, Commit said %d", id, e.Seq, seq)
						}
						return nil
					}); err != nil {
						return err
					}
					if n != 1 {
						t.Errorf("call %d has %d events", id, n)
					}
				}
				for _, id := range failedCalls {
					if _, err := tx.Call(id); !errors.Is(err, ErrNotFound) {
						t.Errorf("failed call %d left a record (err %v)", id, err)
					}
				}
				if us, _, _ := tx.UpdatesState(); us.Pts != len(committed) {
					t.Errorf("updates pts %d, want the last seq %d", us.Pts, len(committed))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantFailed := 0
			if tc.failAt > 0 {
				wantFailed = tc.writers * (tc.each / tc.failAt)
			}
			if len(failedCalls) != wantFailed {
				t.Errorf("%d commits failed, want %d", len(failedCalls), wantFailed)
			}
		})
	}
}

// TestCommitGroupsWaitingCallers holds the commit loop inside one Commit,
// queues more callers behind it, and checks that they then share one
// transaction, and that failing and panicking callers get their own errors
// without failing the others.
func TestCommitGroupsWaitingCallers(t *testing.T) {
	tests := []struct {
		name     string
		callers  int
		failing  map[int]string // caller -> "error" or "panic"
		wantMax  int            // most runs of a succeeding fn
		wantRuns int            // fewest runs of a succeeding fn
	}{
		{"all succeed", 10, nil, 1, 1},
		{"one fails", 10, map[int]string{3: "error"}, 2, 1},
		{"one fails, one panics", 10, map[int]string{2: "panic", 7: "error"}, 3, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openT(t, tempDB(t), Options{})
			inside, release := make(chan struct{}), make(chan struct{})
			blockerDone := make(chan error, 1)
			go func() {
				blockerDone <- db.Commit(func(tx *Tx) error {
					close(inside)
					<-release
					return tx.AppendEvent(&calld.Event{Event: "blocker"})
				})
			}()
			<-inside

			type result struct {
				txid int
				seq  uint64
				runs int32
				err  error
			}
			results := make([]result, tc.callers)
			var wg sync.WaitGroup
			for i := 0; i < tc.callers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := &results[i]
					r.err = db.Commit(func(tx *Tx) error {
						atomic.AddInt32(&r.runs, 1)
						r.txid = tx.tx.ID()
						e := calld.Event{Event: "caller", CallID: int64(i + 1)}
						if err := tx.AppendEvent(&e); err != nil {
							return err
						}
						r.seq = e.Seq
						switch tc.failing[i] {
						case "error":
							return fmt.Errorf("caller %d fails", i)
						case "panic":
							panic(fmt.Sprintf("caller %d panics", i))
						}
						return nil
					})
				}()
			}
			// Wait (without sleeping) until every caller is queued behind
			// the blocked commit.
			for len(db.commits) < tc.callers {
				runtime.Gosched()
			}
			close(release)
			wg.Wait()
			if err := <-blockerDone; err != nil {
				t.Fatal(err)
			}

			txids := map[int]bool{}
			var okSeqs []int
			for i, r := range results {
				switch tc.failing[i] {
				case "error":
					if r.err == nil || !strings.Contains(r.err.Error(), "fails") {
						t.Errorf("caller %d: err %v, want its own error", i, r.err)
					}
				case "panic":
					if r.err == nil || !strings.Contains(r.err.Error(), "panicked") {
						t.Errorf("caller %d: err %v, want the panic as an error", i, r.err)
					}
				default:
					if r.err != nil {
						t.Errorf("caller %d: %v", i, r.err)
					}
					if r.runs < int32(tc.wantRuns) || r.runs > int32(tc.wantMax) {
						t.Errorf("caller %d ran %d times, want %d..%d", i, r.runs, tc.wantRuns, tc.wantMax)
					}
					txids[r.txid] = true
					okSeqs = append(okSeqs, int(r.seq))
				}
			}
			if len(txids) != 1 {
				t.Errorf("the queued callers committed in %d transactions, want 1", len(txids))
			}
			sort.Ints(okSeqs)
			for i, s := range okSeqs {
				if s != i+2 { // seq 1 is the blocker's
					t.Errorf("committed seqs %v, want 2..%d", okSeqs, len(okSeqs)+1)
					break
				}
			}
			if got := seqs(t, db, 0); len(got) != len(okSeqs)+1 {
				t.Errorf("journal has %d events, want %d", len(got), len(okSeqs)+1)
			}
		})
	}
}

func TestCommitDuringClose(t *testing.T) {
	db, err := Open(tempDB(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, closed atomic.Int32
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				err := db.Commit(func(tx *Tx) error { return tx.AppendEvent(&calld.Event{}) })
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrClosed):
					closed.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	// Close while the writers run: every Commit either commits or gets
	// ErrClosed, none hangs or is lost.
	for ok.Load() < 10 {
		runtime.Gosched()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ok.Load()+closed.Load() != 160 {
		t.Fatalf("%d committed + %d closed, want 160", ok.Load(), closed.Load())
	}
	db = openT(t, db.Path(), Options{})
	if got := len(seqs(t, db, 0)); got != int(ok.Load()) {
		t.Errorf("%d events after reopen, %d commits reported success", got, ok.Load())
	}
}
