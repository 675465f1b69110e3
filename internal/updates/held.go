package updates

// heldQueue is a gap buffer: updates held until the hole before them is
// filled, taken out lowest start first (pts - pts_count, or seq_start),
// equal starts in arrival order. A binary heap: O(log n) per update in
// whatever order they arrive (a drain that rescanned or re-sorted the held
// ones cost O(n²) for a burst handed over out of order: BenchmarkHeldRun).
// Not container/heap: its Push takes an interface, which would box (and
// allocate) every held update.
type heldQueue[T any] struct {
	items []heldItem[T]
	n     uint64 // arrivals so far: the tie-break
}

type heldItem[T any] struct {
	start int
	n     uint64
	v     T
}

// Len is the number of held updates.
func (q *heldQueue[T]) Len() int { return len(q.items) }

func (q *heldQueue[T]) less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	return a.start < b.start || (a.start == b.start && a.n < b.n)
}

// push holds v, which starts at start.
func (q *heldQueue[T]) push(start int, v T) {
	q.n++
	q.items = append(q.items, heldItem[T]{start: start, n: q.n, v: v})
	for i := len(q.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

// peek returns the held update with the lowest start; q must not be empty.
func (q *heldQueue[T]) peek() T { return q.items[0].v }

// pop removes the held update peek returns.
func (q *heldQueue[T]) pop() {
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	var zero heldItem[T]
	q.items[last] = zero
	q.items = q.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.less(l, m) {
			m = l
		}
		if r < last && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	if last == 0 {
		q.items = nil // a burst's buffer is not kept
	}
}

// drain empties q and returns what it held, lowest start first.
func (q *heldQueue[T]) drain() []T {
	out := make([]T, 0, len(q.items))
	for q.Len() > 0 {
		out = append(out, q.peek())
		q.pop()
	}
	return out
}
