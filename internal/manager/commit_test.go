package manager_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/manager"
	"github.com/calld/calld/internal/store"
)

// TestLoopGoesOnWhileACommitWaits: a commit that cannot finish (the state
// file's writer lock is held) holds back the effects of what it writes,
// not the loop: the loop goes on applying inputs, the call's discard waits
// for its commit, and is sent once the commit is done.
func TestLoopGoesOnWhileACommitWaits(t *testing.T) {
	// It counts the calls in memory: a simulator of its own.
	h := newHarness(t, harnessOptions{policy: manager.Policy{Reject: true}, srv: ownSim(t)})
	hold, held, writer := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		writer <- h.db.Update(func(*store.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
			if err := <-writer; err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release) // before the harness's own cleanup: it stops the manager

	before := h.srv.Count("phone.discardCall")
	id := h.incoming(false)
	// Wait for the loop to apply the push (InMemoryCalls is an input of
	// its own, which may share the push's batch).
	applied := make(chan struct{})
	go func() {
		posted, posts, stop := h.watchPosts()
		defer stop()
		for {
			n := posts.Load()
			if manager.InMemoryCalls(h.m) == 1 {
				close(applied)
				return
			}
			for posts.Load() <= n+1 {
				<-posted
			}
		}
	}()
	answered(t, applied, "the loop never applied the push")
	// The push's batch is applied, so its commit has begun (and waits):
	// an input posted now is the loop's next, after that commit began.
	next := make(chan int, 1)
	go func() { next <- manager.InMemoryCalls(h.m) }()
	if n := answered(t, next, "the loop applied no input while a commit waited for the state file"); n != 1 {
		t.Fatalf("%d calls in memory, want 1", n)
	}
	// ViewFile: View would wait for the writer held here (it puts the
	// log's commits into the file first); the commit is not logged
	// either (Log waits for that writer too).
	if err := h.db.ViewFile(func(tx *store.Tx) error { _, err := tx.Call(id); return err }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("call %d in the store before its commit: %v", id, err)
	}
	if n := h.srv.Count("phone.discardCall"); n != before {
		t.Fatalf("phone.discardCall sent before the refusal was committed (%d)", n-before)
	}
	// The watchdog's question: the loop answers, but the commit hangs
	// past the second Alive gives it.
	alive := make(chan error, 1)
	go func() { alive <- h.m.Alive(time.Second) }()
	var err error
	h.travelUntil(func() bool {
		select {
		case err = <-alive:
			return true
		default:
			return false
		}
	})
	if err == nil || !strings.Contains(err.Error(), "store commit") {
		t.Fatalf("Alive while a commit hangs: %v", err)
	}

	release()
	if err := h.m.Alive(time.Second); err != nil {
		t.Fatalf("Alive once the commit could go on: %v", err)
	}
	h.waitState(id, calld.StateEnded)
	if n := len(discards(h.srv, id)); n != 1 {
		t.Fatalf("sim saw %d phone.discardCall for %d, want 1", n, id)
	}
	h.requireInStep()
}
