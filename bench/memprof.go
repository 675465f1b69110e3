package bench

import (
	"runtime"
	"strings"
)

// ProfileHeap makes the runtime sample one allocation per 512 bytes, so
// that CalldHeap is precise, and returns the function that restores the
// previous rate. Call it before the allocations to attribute.
func ProfileHeap() (restore func()) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 512
	return func() { runtime.MemProfileRate = old }
}

// CalldHeap is the heap in use (after a collection) that was allocated
// under the daemon's own code: a stack with a calld package other than
// the simulator (sim), this harness (bench) and the reliability tests. The
// simulator runs in the same process and keeps a history per call that
// must not be counted as the daemon's. Allocations made before
// ProfileHeap are sampled at the default rate (one per 512 KiB).
func CalldHeap() int64 {
	runtime.GC()
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	recs := make([]runtime.MemProfileRecord, n+100)
	n, _ = runtime.MemProfile(recs, true)
	var total int64
	for _, r := range recs[:n] {
		if ours(r.Stack()) {
			total += r.InUseBytes()
		}
	}
	return total
}

func ours(stack []uintptr) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "github.com/calld/calld/") &&
			!strings.HasPrefix(f.Function, "github.com/calld/calld/internal/sim.") &&
			!strings.HasPrefix(f.Function, "github.com/calld/calld/bench.") &&
			!strings.HasPrefix(f.Function, "github.com/calld/calld/internal/reliability.") {
			return true
		}
		if !more {
			return false
		}
	}
}
