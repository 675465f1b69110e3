package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/calld/calld"
)

// runDiscard is `calld discard ID [--reason R]`: POST /v1/calls/{id}/discard.
func runDiscard(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("discard", "ID [--reason auto|busy|hangup|missed|disconnect] "+commonFlags, sio)
	reason := c.fs.String("reason", "auto", "discard `REASON`: auto (the daemon decides), busy, hangup, missed, disconnect")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return parseStatus(err)
	}
	id, err := parseCallID(pos[0])
	if err != nil {
		return c.usageError("%v", err)
	}
	r, err := calld.ParseReason(*reason)
	if err != nil {
		return c.usageError("--reason %q: use auto, busy, hangup, missed or disconnect", *reason)
	}
	return callAction(ctx, c, "/v1/calls/"+strconv.FormatInt(id, 10)+"/discard", calld.DiscardRequest{Reason: r})
}

// callAction posts body to path and prints the resulting call.
func callAction(ctx context.Context, c *clientCmd, path string, body any) int {
	cl, code := c.client()
	if cl == nil {
		return code
	}
	defer cl.Close()
	data, err := cl.Raw(ctx, http.MethodPost, path, body)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		printRaw(c.sio.stdout, data)
		return 0
	}
	var k calld.Call
	if err := decodeInto(data, &k); err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.sio.stdout, callSummary(k))
	return 0
}
