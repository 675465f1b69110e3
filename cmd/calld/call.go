package main

import (
	"context"

	"github.com/calld/calld"
)

// runCall is `calld call PEER [--video]`: POST /v1/calls.
func runCall(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("call", "PEER [--video] "+commonFlags, sio)
	video := c.fs.Bool("video", false, "ask for a video call")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return parseStatus(err)
	}
	if err := calld.ValidPeer(pos[0]); err != nil {
		return c.usageError("PEER must be @username or a user id: %q", pos[0])
	}
	return callAction(ctx, c, "/v1/calls", calld.PlaceRequest{Peer: pos[0], Video: *video})
}
