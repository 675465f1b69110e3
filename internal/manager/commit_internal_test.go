package manager

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/calld/calld"
)

// TestAnswerIsWhatWasCommitted: an API answer queued with a step tells of
// that step, which its commit holds, not of a step the loop applied while
// the commit was in flight (here the call ends in the next batch).
func TestAnswerIsWhatWasCommitted(t *testing.T) {
	db := tempDB(t)
	m := New(Config{DB: db, Log: zerolog.Nop()})
	ctx := context.Background()
	c := benchCall(t, 1, calld.StateActive)
	m.dirty[c] = true
	var answered []calld.State
	m.afterCommit(c, func(r calld.Call, _ error) { answered = append(answered, r.State) }, nil)
	if err := m.flush(ctx); err != nil { // the commit goes on its way
		t.Fatal(err)
	}
	c.m = benchCall(t, 1, calld.StateEnded).m
	m.dirty[c] = true
	if err := m.settle(ctx); err != nil {
		t.Fatal(err)
	}
	if len(answered) != 1 || answered[0] != calld.StateActive {
		t.Fatalf("answered %v, want [%s]: the state its commit held", answered, calld.StateActive)
	}
}

// TestLoopCommitsAreEncoded: the loop's commits say their records are
// calld.Call's own encoding, so that a checkpoint stores them unchecked
// (store.Tx.PutEncodedCall: checking was ~60 % of a put's time).
func TestLoopCommitsAreEncoded(t *testing.T) {
	db := tempDB(t)
	m := New(Config{DB: db, Log: zerolog.Nop()})
	m.dirty[benchCall(t, 1, calld.StateActive)] = true
	b, err := m.collectBatch()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.records) != 1 || !b.encoded {
		t.Fatalf("%d records, encoded %v: want 1, true", len(b.records), b.encoded)
	}
}
