package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

// runEvents is `calld events [--follow] [--since N]`: GET /v1/events.
//
// Without --follow it prints the journal (from --since, default the
// beginning) and exits once caught up (the API's ?follow=0). With
// --follow it streams until interrupted: live events only, or the journal
// from --since first and then live events without gap or duplicate.
func runEvents(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("events", "[--follow] [--since N] "+commonFlags, sio)
	follow := c.fs.Bool("follow", false, "keep streaming live events until interrupted")
	c.fs.BoolVar(follow, "f", false, "short for --follow")
	since := c.fs.Uint64("since", 0, "replay the journal's events with seq greater than `N` first")
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	opts := client.EventsOptions{Follow: *follow, Since: *since, Replay: !*follow}
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == "since" {
			opts.Replay = true
		}
	})
	cl, code := c.client()
	if cl == nil {
		return code
	}
	defer cl.Close()
	var err error
	if c.json {
		err = cl.EventLines(ctx, opts, func(line []byte) error {
			_, err := sio.stdout.Write(append(line, '\n'))
			return err
		})
	} else {
		err = cl.Events(ctx, opts, func(ev calld.Event) error {
			_, err := fmt.Fprintln(sio.stdout, eventLine(ev))
			return err
		})
	}
	if err != nil {
		if *follow && errors.Is(err, context.Canceled) {
			return 0 // interrupted: the normal end of --follow
		}
		return c.fail(err)
	}
	return 0
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
