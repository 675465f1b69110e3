package manager

import (
	"bytes"
	"fmt"
	"testing"
)

// The relay's bookkeeping: numbering from 1, exactly once per payload
// (a byte-identical repeat is dropped), the byte bound evicting the oldest
// without reusing seq numbers, the count bound, and the end.
func TestSignalingBounds(t *testing.T) {
	var s signaling
	const id = 7
	payload := func(n, size int) []byte {
		b := bytes.Repeat([]byte{byte(n)}, size)
		copy(b, fmt.Sprint(n))
		return b
	}
	seqs := func(after uint64) []uint64 {
		ps, _, _ := s.get(id).since(&s.mu, after)
		var out []uint64
		for _, p := range ps {
			out = append(out, p.Seq)
		}
		return out
	}
	for n := 1; n <= 3; n++ {
		if seq, why := s.add(id, payload(n, 10)); seq != uint64(n) {
			t.Fatalf("payload %d: seq %d (%s)", n, seq, why)
		}
	}
	if seq, _ := s.add(id, payload(2, 10)); seq != 0 {
		t.Fatalf("a repeated payload was kept as %d", seq)
	}
	if got := seqs(1); fmt.Sprint(got) != "[2 3]" {
		t.Fatalf("since 1: %v", got)
	}
	// Past SignalingMaxBytes the oldest go; seq numbers go on.
	big := SignalingMaxBytes / 2
	if seq, _ := s.add(id, payload(4, big)); seq != 4 {
		t.Fatalf("big payload: seq %d", seq)
	}
	if seq, _ := s.add(id, payload(5, big)); seq != 5 {
		t.Fatalf("second big payload: seq %d", seq)
	}
	if got := seqs(0); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("after eviction: %v", got)
	}
	if sc := s.get(id); sc.bytes > SignalingMaxBytes {
		t.Fatalf("%d bytes kept, bound %d", sc.bytes, SignalingMaxBytes)
	}
	if seq, _ := s.add(id, payload(6, SignalingMaxBytes+1)); seq != 0 {
		t.Fatal("a payload over the bound was kept")
	}
	// An evicted payload repeated by a difference is still a repeat.
	if seq, _ := s.add(id, payload(1, 10)); seq != 0 {
		t.Fatal("an evicted payload came back")
	}
	// The count bound.
	for n := len(s.get(id).seen); n < SignalingMaxPayloads; n++ {
		if seq, why := s.add(id, []byte(fmt.Sprint("p", n))); seq == 0 {
			t.Fatalf("payload %d dropped: %s", n, why)
		}
	}
	if seq, _ := s.add(id, []byte("one too many")); seq != 0 {
		t.Fatal("a payload past the count bound was kept")
	}
	// The end wakes followers and frees the call.
	_, _, changed := s.get(id).since(&s.mu, 0)
	sc := s.get(id)
	s.end(id)
	select {
	case <-changed:
	default:
		t.Fatal("end did not wake the followers")
	}
	if _, ended, _ := sc.since(&s.mu, 0); !ended {
		t.Fatal("not ended")
	}
	if s.calls[id] != nil {
		t.Fatal("the ended call's payloads are still held")
	}
}
