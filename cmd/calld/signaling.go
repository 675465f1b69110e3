package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/calld/calld"
)

// runSignaling is `calld signaling ID [--follow] [--since N]`: GET
// /v1/calls/{id}/signaling. Without --follow it prints the payloads kept
// for the call and exits; with --follow it streams until the call ends
// (or it is interrupted). Lines are "SEQ BASE64", or the API's NDJSON with
// --json. The payloads are secrets: the route needs the mutating routes'
// permission.
func runSignaling(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("signaling", "ID [--follow] [--since N] "+commonFlags, sio)
	follow := c.fs.BoolP("follow", "f", false, "keep streaming new payloads until the call ends")
	since := c.fs.Uint64("since", 0, "print the payloads with seq greater than `N`")
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
	err = cl.Signaling(ctx, id, *since, *follow, func(p calld.SignalingPayload) error {
		if c.json {
			b, err := json.Marshal(p)
			if err != nil {
				return err
			}
			_, err = sio.stdout.Write(append(b, '\n'))
			return err
		}
		_, err := fmt.Fprintf(sio.stdout, "%d %s\n", p.Seq, base64.StdEncoding.EncodeToString(p.Data))
		return err
	})
	if err != nil {
		if *follow && errors.Is(err, context.Canceled) {
			return 0
		}
		return c.fail(err)
	}
	return 0
}
