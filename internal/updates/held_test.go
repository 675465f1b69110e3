package updates

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHeldQueueOrder: the queue gives back what it holds lowest start
// first, equal starts in arrival order (a stable sort), also when pushes
// and pops interleave.
func TestHeldQueueOrder(t *testing.T) {
	type item struct{ start, arrival int }
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var q heldQueue[item]
		var model []item // what the queue should hold, stably sorted
		arrival := 0
		for range 300 {
			if q.Len() > 0 && rng.IntN(3) == 0 {
				if got, want := q.peek(), model[0]; got != want {
					t.Fatalf("seed %d: peek %v, want %v", seed, got, want)
				}
				q.pop()
				model = model[1:]
				continue
			}
			arrival++
			it := item{start: rng.IntN(40), arrival: arrival}
			q.push(it.start, it)
			model = append(model, it)
			slices.SortStableFunc(model, func(a, b item) int { return a.start - b.start })
		}
		if got := q.drain(); !slices.Equal(got, model) {
			t.Fatalf("seed %d: drained %v, want %v", seed, got, model)
		}
		if q.Len() != 0 || q.items != nil {
			t.Fatalf("seed %d: %d left after drain", seed, q.Len())
		}
	}
}
