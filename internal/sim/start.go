package sim

import "context"

// TB is what Start needs of a test or benchmark (a testing.TB has it; the
// simulator does not link the testing package into calld).
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Start runs a simulator with options o on a loopback port for one test or
// benchmark and closes it when tb ends; it fails tb if the simulator
// cannot start.
func Start(tb TB, o Options) *Server {
	tb.Helper()
	srv, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv
}
