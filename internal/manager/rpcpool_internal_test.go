package manager

import "testing"

// TestFifo: the pool's queue gives its items in order, and one that never
// runs empty (a backlog of 100, one in and one out each time) stays about
// the backlog's size instead of growing with every item that went
// through it.
func TestFifo(t *testing.T) {
	var q fifo
	in, out := 0, 0
	push := func() {
		n := in
		q.push(func() {
			if n != out {
				t.Fatalf("item %d came out as the %dth", n, out)
			}
			out++
		})
		in++
	}
	for range 100 {
		push()
	}
	for range 100_000 {
		push()
		q.pop()()
		if q.len() != 100 {
			t.Fatalf("%d items queued, want 100", q.len())
		}
	}
	if c := cap(q.items); c > 1024 {
		t.Fatalf("a backlog of 100 holds a slice of %d", c)
	}
	for q.len() > 0 {
		q.pop()()
	}
	if q.pop() != nil || out != in {
		t.Fatalf("after the last: %d of %d out, or pop gave an item", out, in)
	}
	push()
	q.drop()
	if q.len() != 0 || q.pop() != nil {
		t.Fatal("drop left items")
	}
}
