package fsm

import (
	"runtime"
	"testing"
	"time"

	"github.com/gotd/td/tg"
)

// heapPerMachine is the heap held per live machine of a new incoming
// call, over n of them (after a collection).
func heapPerMachine(n int) float64 {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := make([]*Machine, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ms {
		ms[i] = NewIncoming(&tg.PhoneCallRequested{ID: int64(i + 1), AccessHash: 7, AdminID: 42, ParticipantID: 1, Date: 1}, "alice", now, Timeouts{})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ms)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
}

// TestMachineHeap: a live call's machine holds its record, not a looplab
// FSM of its own (the table's maps, built per call, were most of a live
// call's heap): at most 1 KiB per machine.
func TestMachineHeap(t *testing.T) {
	if per := heapPerMachine(5000); per > 1024 {
		t.Errorf("%.0f B of heap per live machine, want ≤ 1024", per)
	} else {
		t.Logf("%.0f B of heap per live machine", per)
	}
}
