package main

import (
	"context"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/calld/calld"
)

// runCalls is `calld calls [--all]`: GET /v1/calls.
func runCalls(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("calls", "[--all] "+commonFlags, sio)
	all := c.fs.Bool("all", false, "every known call, not only live ones (newest first)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	cl, code := c.client()
	if cl == nil {
		return code
	}
	defer cl.Close()
	path := "/v1/calls"
	if *all {
		path += "?all=1"
	}
	data, err := cl.Raw(ctx, http.MethodGet, path, nil)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		printRaw(sio.stdout, data)
		return 0
	}
	var body calld.CallsBody
	if err := decodeInto(data, &body); err != nil {
		return c.fail(err)
	}
	if len(body.Calls) == 0 {
		if *all {
			fmt.Fprintln(sio.stdout, "No calls.")
		} else {
			fmt.Fprintln(sio.stdout, "No live calls.")
		}
		return 0
	}
	printCallTable(sio, body.Calls)
	return 0
}

func printCallTable(sio stdio, calls []calld.Call) {
	tw := tabwriter.NewWriter(sio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIRECTION\tPEER\tSTATE\tVIDEO\tCREATED\tDURATION\tREASON\tENDED BY")
	for _, k := range calls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			k.ID, k.Direction, peerName(k), k.State, yesNo(k.Video), fmtTime(k.CreatedAt),
			callDuration(k, sio.clock.Now()), orDash(string(k.Reason)), orDash(string(k.EndedBy)))
	}
	tw.Flush()
}

// callDuration is a call's duration for people: the recorded one, or the
// running one of an active call (since active_at).
func callDuration(k calld.Call, now time.Time) string {
	if k.State == calld.StateActive && k.ActiveAt != nil && now.After(*k.ActiveAt) {
		return now.Sub(*k.ActiveAt).Truncate(time.Second).String()
	}
	return fmtDuration(k.Duration)
}
