package control

import (
	"testing"
	"time"

	"github.com/calld/calld"
)

func TestHub(t *testing.T) {
	tests := []struct {
		name        string
		buffer      int
		publish     int
		wantDropped bool
		wantGot     int // events the never-reading subscriber can still drain
	}{
		{"within the buffer", 4, 4, false, 4},
		{"one over the buffer", 4, 5, true, 4},
		{"far over the buffer", 2, 1000, true, 2},
		{"default buffer", 0, DefaultHubBuffer, false, DefaultHubBuffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub(tt.buffer)
			slow := h.Subscribe() // never reads while publishing
			fast := h.Subscribe()
			var fastGot []uint64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 1; i <= tt.publish; i++ {
					h.Publish(calld.Event{Seq: uint64(i)})
					for len(fast.C) > 0 {
						fastGot = append(fastGot, (<-fast.C).Seq)
					}
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Publish blocked")
			}
			if len(fastGot) != tt.publish || fastGot[len(fastGot)-1] != uint64(tt.publish) {
				t.Errorf("fast subscriber got %d events", len(fastGot))
			}
			want := 2
			if tt.wantDropped {
				want = 1
			}
			if h.Len() != want {
				t.Errorf("Len %d, want %d", h.Len(), want)
			}
			got := 0
			if !tt.wantDropped {
				slow.Close()
			}
			for ev := range slow.C { // ends: closed by the drop or by Close
				got++
				if ev.Seq != uint64(got) {
					t.Errorf("seq %d at position %d", ev.Seq, got)
				}
			}
			if got != tt.wantGot || slow.Dropped() != tt.wantDropped {
				t.Errorf("drained %d (dropped %v), want %d (dropped %v)", got, slow.Dropped(), tt.wantGot, tt.wantDropped)
			}
			slow.Close() // idempotent
			fast.Close()
			if h.Len() != 0 {
				t.Errorf("Len %d after Close", h.Len())
			}
		})
	}
}

func TestHubClose(t *testing.T) {
	h := NewHub(1)
	s := h.Subscribe()
	h.Close()
	if _, ok := <-s.C; ok || s.Dropped() {
		t.Error("subscription not closed normally by Hub.Close")
	}
	late := h.Subscribe()
	if _, ok := <-late.C; ok {
		t.Error("subscription after Close is open")
	}
	h.Publish(calld.Event{Seq: 1}) // no panic on closed channels
	s.Close()
	late.Close()
}
