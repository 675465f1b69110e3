package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/calld/calld"
)

// The media side of the API (CONTRACT §5.5).

// Signaling streams GET /v1/calls/{id}/signaling?since=N (follow: until
// the call ends; without: the payloads kept, then the end) and calls fn
// with each payload. It returns nil when the stream ends.
func (c *Client) Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(calld.SignalingPayload) error) error {
	path := callPath(id, "/signaling?since="+strconv.FormatUint(since, 10))
	if !follow {
		path += "&follow=0"
	}
	return c.lines(ctx, path, "signaling stream", maxSignalingLine, func(line []byte) error {
		var p calld.SignalingPayload
		if err := json.Unmarshal(line, &p); err != nil {
			return fmt.Errorf("signaling stream: %w", err)
		}
		return fn(p)
	})
}

// SendSignaling is POST /v1/calls/{id}/signaling.
func (c *Client) SendSignaling(ctx context.Context, id int64, data []byte) error {
	return c.do(ctx, http.MethodPost, callPath(id, "/signaling"), calld.SignalingRequest{Data: data}, &calld.SentBody{})
}

// Rate is POST /v1/calls/{id}/rating.
func (c *Client) Rate(ctx context.Context, id int64, rating int, comment string) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/rating"), calld.RatingRequest{Rating: rating, Comment: comment}, &call)
	return call, err
}

// SaveDebug is POST /v1/calls/{id}/debug with the engine's JSON debug log.
func (c *Client) SaveDebug(ctx context.Context, id int64, debugJSON json.RawMessage) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/debug"), debugJSON, &call)
	return call, err
}
