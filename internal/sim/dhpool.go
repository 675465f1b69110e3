package sim

import (
	"runtime"
	"sync"
)

// PrepareCalls computes the peer's DH halves of the next n calls
// (IncomingCall, phone.requestCall) now, on every core, so that those
// calls do not spend the simulator's time on a 2048-bit modular
// exponentiation each (about 0.5 ms of CPU): a burst of pushes then
// measures the client, not the simulator (bench/ab). Calls past the
// prepared ones compute their half as before.
func (s *Server) PrepareCalls(n int) {
	if n <= 0 {
		return
	}
	out := make([]dhSecret, n)
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				out[i] = newDHSecret()
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dhPool = append(s.dhPool, out...)
}

// peerSecretLocked is the next prepared DH half, else a new one.
func (s *Server) peerSecretLocked() dhSecret {
	if len(s.dhPool) == 0 {
		return newDHSecret()
	}
	d := s.dhPool[0]
	s.dhPool = s.dhPool[1:]
	return d
}
