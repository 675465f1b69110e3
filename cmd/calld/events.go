package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gotd/td/clock"
	"github.com/spf13/pflag"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

// runEvents is `calld events [--follow] [--since N]`: GET /v1/events.
//
// Without --follow it prints the journal (from --since, default the
// beginning) and exits once caught up (the API's ?follow=0). With
// --follow it streams until interrupted: live events only, or the journal
// from --since first and then live events without gap or duplicate; when
// the stream ends (the daemon restarts) it reconnects with since = the
// last seq printed (CONTRACT §5.3).
func runEvents(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("events", "[--follow] [--since N] "+commonFlags, sio)
	follow := c.fs.BoolP("follow", "f", false, "keep streaming live events until interrupted, across daemon restarts")
	since := c.fs.Uint64("since", 0, "replay the journal's events with seq greater than `N` first")
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	opts := client.EventsOptions{Follow: *follow, Since: *since, Replay: !*follow}
	c.fs.Visit(func(f *pflag.Flag) {
		if f.Name == "since" {
			opts.Replay = true
		}
	})
	cl, code := c.client()
	if cl == nil {
		return code
	}
	defer cl.Close()
	s := eventStream{c: c, cl: cl, opts: opts}
	if !*follow {
		if err := s.once(ctx); err != nil {
			return c.fail(err)
		}
		return 0
	}
	return s.follow(ctx)
}

// eventStream prints the event stream and remembers the last seq
// printed, where a reconnection resumes.
type eventStream struct {
	c    *clientCmd
	cl   *client.Client
	opts client.EventsOptions
	// writeErr is stdout's failure, which is final.
	writeErr error
}

// Reconnection delays of `events --follow`: the first, doubled up to the
// last.
const (
	reconnectFirst = 250 * time.Millisecond
	reconnectMax   = 5 * time.Second
)

// follow streams until ctx ends, reconnecting whenever the stream ends
// or breaks; only a first connection that fails (the daemon is not
// running) or stdout failing ends it with exit status 1.
func (s *eventStream) follow(ctx context.Context) int {
	delay := reconnectFirst
	for attempt := 0; ; attempt++ {
		connected := false
		err := s.run(ctx, func() { connected = true; delay = reconnectFirst })
		switch {
		case ctx.Err() != nil:
			return 0 // interrupted: the normal end of --follow
		case s.writeErr != nil:
			return s.c.fail(s.writeErr)
		case attempt == 0 && !connected && err != nil:
			return s.c.fail(err)
		}
		why := "the daemon ended the stream"
		if err != nil {
			why = err.Error()
		}
		fmt.Fprintf(s.c.sio.stderr, "calld events: %s; reconnecting in %s (since %d)\n", why, delay, s.opts.Since)
		t := s.c.sio.clock.Timer(delay)
		select {
		case <-ctx.Done():
			clock.StopTimer(t)
			return 0
		case <-t.C():
		}
		delay = min(2*delay, reconnectMax)
	}
}

// once prints the journal (or one stream) to its end.
func (s *eventStream) once(ctx context.Context) error {
	err := s.run(ctx, func() {})
	if s.writeErr != nil {
		return s.writeErr
	}
	return err
}

// run streams once. connected is called when the daemon answered (the
// first line, or the end of a stream that had none).
func (s *eventStream) run(ctx context.Context, connected func()) error {
	print := func(seq uint64, text []byte) error {
		connected()
		if _, err := s.c.sio.stdout.Write(append(text, '\n')); err != nil {
			s.writeErr = err
			return err
		}
		// Resume after this one: replayed from the journal, so that
		// nothing between the two connections is lost.
		s.opts.Since, s.opts.Replay = seq, true
		return nil
	}
	var err error
	if s.c.json {
		err = s.cl.EventLines(ctx, s.opts, func(line []byte) error {
			var ev struct {
				Seq uint64 `json:"seq"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				return fmt.Errorf("decoding event %q: %w", line, err)
			}
			return print(ev.Seq, line)
		})
	} else {
		err = s.cl.Events(ctx, s.opts, func(ev calld.Event) error {
			return print(ev.Seq, []byte(eventLine(ev)))
		})
	}
	if err == nil || !isDialError(err) {
		connected()
	}
	return err
}

// isDialError reports whether err is a failure to reach the daemon at
// all (as opposed to a stream that broke).
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func eventLine(ev calld.Event) string {
	s := fmt.Sprintf("%6d  %s  %-10s  call %d", ev.Seq, ev.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), ev.Event, ev.CallID)
	if ev.From != "" || ev.To != "" {
		s += fmt.Sprintf("  %s -> %s", orDash(ev.From), orDash(ev.To))
	}
	if ev.Reason != "" {
		s += "  reason " + ev.Reason
	}
	if ev.Duration != 0 {
		s += "  duration " + fmtDuration(ev.Duration)
	}
	return s
}
