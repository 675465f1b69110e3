package sim

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestLifecycle: probes that say nothing or junk do not stop the server,
// and ending the Listen context (or Close) ends idle connections too.
func TestLifecycle(t *testing.T) {
	tests := []struct {
		name string
		stop func(cancel context.CancelFunc, srv *Server)
	}{
		{"context cancelled", func(cancel context.CancelFunc, srv *Server) { cancel() }},
		{"Close", func(cancel context.CancelFunc, srv *Server) {
			if err := srv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := srv.Listen(ctx, "127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			if err := srv.Listen(ctx, "127.0.0.1:0"); err == nil {
				t.Fatal("second Listen succeeded")
			}
			// A probe that connects and closes at once.
			probe, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			_ = probe.Close()
			// An idle MTProto connection (intermediate transport tag, then
			// nothing).
			idle, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			if _, err := idle.Write([]byte{0xee, 0xee, 0xee, 0xee}); err != nil {
				t.Fatal(err)
			}
			// The server still accepts after the probe.
			again, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatalf("server stopped accepting after a probe: %v", err)
			}
			_ = again.Close()

			tt.stop(cancel, srv)
			select {
			case <-srv.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("serving did not stop: the idle connection kept it")
			}
			_ = idle.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := idle.Read(make([]byte, 1)); err == nil {
				t.Fatal("idle connection still open after stop")
			}
		})
	}
}
