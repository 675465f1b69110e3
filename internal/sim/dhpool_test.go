package sim

import (
	"bytes"
	"testing"
)

// TestPrepareCalls: the next calls take the prepared DH halves in order,
// then the simulator computes them again.
func TestPrepareCalls(t *testing.T) {
	srv, err := New(Options{Authorized: true})
	if err != nil {
		t.Fatal(err)
	}
	peer := srv.AddPeer("prepared")
	srv.PrepareCalls(2)
	srv.mu.Lock()
	prepared := append([]dhSecret(nil), srv.dhPool...)
	srv.mu.Unlock()
	if len(prepared) != 2 {
		t.Fatalf("%d prepared, want 2", len(prepared))
	}
	for i := range 3 {
		id, err := srv.IncomingCall(peer, false)
		if err != nil {
			t.Fatal(err)
		}
		srv.mu.Lock()
		got := srv.state.calls[id].peerDH
		left := len(srv.dhPool)
		srv.mu.Unlock()
		if i < 2 && !bytes.Equal(got.gx, prepared[i].gx) {
			t.Errorf("call %d: not the prepared secret %d", i, i)
		}
		if i == 2 && (bytes.Equal(got.gx, prepared[0].gx) || bytes.Equal(got.gx, prepared[1].gx) || len(got.gx) != 256) {
			t.Errorf("call %d: want a fresh 256-byte g^x", i)
		}
		if want := max(1-i, 0); left != want {
			t.Errorf("after call %d: %d prepared left, want %d", i, left, want)
		}
	}
}
