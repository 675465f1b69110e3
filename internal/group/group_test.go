package group

import (
	"context"
	"errors"
	"testing"
)

func TestGroup(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	for _, tc := range []struct {
		name string
		// errs are what the goroutines return, in order; stopAfter is how
		// many return before Stopping (-1: never).
		errs      []error
		stopAfter int
		want      error
		failed    bool
	}{
		{"all return nil", []error{nil, nil}, -1, nil, false},
		{"the first error fails the group", []error{nil, errA, errB}, -1, errA, true},
		{"errors after Stopping fail nothing", []error{nil, errA}, 1, nil, false},
		{"an error before Stopping is kept", []error{errA, errB}, 1, errA, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fails := 0
			g := New(func() { fails++ })
			for i, err := range tc.errs {
				if i == tc.stopAfter {
					g.Stopping()
				}
				done := make(chan struct{})
				if !g.Go(func() error { defer close(done); return err }) {
					t.Fatal("Go refused before Wait")
				}
				<-done
			}
			got, timedOut := g.Wait(context.Background())
			if got != tc.want || timedOut {
				t.Fatalf("Wait: %v, %v; want %v, false", got, timedOut, tc.want)
			}
			select {
			case <-g.Failed():
				if !tc.failed {
					t.Fatal("Failed is closed")
				}
			default:
				if tc.failed {
					t.Fatal("Failed is not closed")
				}
			}
			if want := map[bool]int{true: 1}[tc.failed]; fails != want {
				t.Fatalf("onFail ran %d times, want %d", fails, want)
			}
		})
	}
}

// TestGroupWaits: Wait returns only once every goroutine returned, and
// refuses new ones from its start.
func TestGroupWaits(t *testing.T) {
	var g Group // the zero Group works
	release, waited := make(chan struct{}), make(chan struct{})
	g.Go(func() error { <-release; return nil })
	go func() {
		defer close(waited)
		g.Wait(context.Background())
	}()
	for g.Go(func() error { return nil }) {
		// Wait has not begun yet.
	}
	select {
	case <-waited:
		t.Fatal("Wait returned with a goroutine running")
	default:
	}
	close(release)
	<-waited
}

// TestGroupWaitGivesUp: Wait gives up when its context ends and says so.
func TestGroupWaitGivesUp(t *testing.T) {
	g := New(nil)
	release := make(chan struct{})
	defer close(release)
	g.Go(func() error { <-release; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err, timedOut := g.Wait(ctx); err != nil || !timedOut {
		t.Fatalf("Wait: %v, %v; want nil, true", err, timedOut)
	}
}
