package main

import (
	"context"
	"strconv"

	"github.com/calld/calld"
)

// runRate is `calld rate ID 1..5 [--comment TEXT]`: POST
// /v1/calls/{id}/rating (phone.setCallRating), for a call that ended
// with need_rating; once per call.
func runRate(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("rate", "ID 1..5 [--comment TEXT] "+commonFlags, sio)
	comment := c.fs.String("comment", "", "a comment sent with the rating")
	pos, err := c.parse(args, 2, 2)
	if err != nil {
		return parseStatus(err)
	}
	id, err := parseCallID(pos[0])
	if err != nil {
		return c.usageError("%v", err)
	}
	rating, err := strconv.Atoi(pos[1])
	if err != nil || rating < 1 || rating > 5 {
		return c.usageError("rating %q: want 1, 2, 3, 4 or 5", pos[1])
	}
	return callAction(ctx, c, "/v1/calls/"+strconv.FormatInt(id, 10)+"/rating", calld.RatingRequest{Rating: rating, Comment: *comment})
}
