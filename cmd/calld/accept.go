package main

import (
	"context"
	"strconv"
)

// runAccept is `calld accept ID`: POST /v1/calls/{id}/accept.
func runAccept(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("accept", "ID "+commonFlags, sio)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return parseStatus(err)
	}
	id, err := parseCallID(pos[0])
	if err != nil {
		return c.usageError("%v", err)
	}
	return callAction(ctx, c, "/v1/calls/"+strconv.FormatInt(id, 10)+"/accept", nil)
}
