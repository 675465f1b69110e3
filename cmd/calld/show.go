package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"text/tabwriter"

	"github.com/calld/calld"
)

// runShow is `calld show ID`: GET /v1/calls/{id}.
func runShow(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("show", "ID "+commonFlags, sio)
	return getCallResource(ctx, c, args, "", func(data []byte) error {
		var k calld.Call
		if err := decodeInto(data, &k); err != nil {
			return err
		}
		printCall(sio, k)
		return nil
	})
}

// getCallResource is the body of the commands that take one call ID and
// GET /v1/calls/{id}+suffix: it prints the JSON with --json, else hands
// it to print.
func getCallResource(ctx context.Context, c *clientCmd, args []string, suffix string, print func([]byte) error) int {
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return parseStatus(err)
	}
	id, err := parseCallID(pos[0])
	if err != nil {
		return c.usageError("%v", err)
	}
	cl, code := c.client()
	if cl == nil {
		return code
	}
	defer cl.Close()
	data, err := cl.Raw(ctx, http.MethodGet, "/v1/calls/"+strconv.FormatInt(id, 10)+suffix, nil)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		printRaw(c.sio.stdout, data)
		return 0
	}
	if err := print(data); err != nil {
		return c.fail(err)
	}
	return 0
}

// printCall prints every field of a call, one per line.
func printCall(sio stdio, k calld.Call) {
	tw := tabwriter.NewWriter(sio.stdout, 0, 4, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(tw, "%s\t%v\n", name, v) }
	row("ID", k.ID)
	row("Access hash", k.AccessHash)
	row("Direction", k.Direction)
	row("Peer", peerName(k))
	row("State", k.State)
	row("Video", yesNo(k.Video))
	row("Created", fmtTime(k.CreatedAt))
	row("Ringing", fmtTime(k.RingingAt))
	row("Active", fmtTime(k.ActiveAt))
	row("Ended", fmtTime(k.EndedAt))
	row("Duration", callDuration(k, sio.clock.Now()))
	row("Reason", orDash(string(k.Reason)))
	row("Ended by", orDash(string(k.EndedBy)))
	row("Connection", k.ConnectionID)
	if len(k.Connections) == 0 {
		row("Connections", "-")
	}
	for i, cn := range k.Connections {
		name := ""
		if i == 0 {
			name = "Connections"
		}
		row(name, connectionLine(cn.ID, cn.IP, cn.IPv6, cn.Port, ""))
	}
	row("Need rating", yesNo(k.NeedRating))
	row("Need debug", yesNo(k.NeedDebug))
	row("Error", orDash(k.Error))
	if k.AdminID != 0 || k.ParticipantID != 0 {
		row("Admin / participant", fmt.Sprintf("%d / %d", k.AdminID, k.ParticipantID))
	}
	if k.Deadline != nil {
		row("Deadline", fmt.Sprintf("%s (%s)", fmtTime(k.Deadline), orDash(k.DeadlineKind)))
	}
	tw.Flush()
}
