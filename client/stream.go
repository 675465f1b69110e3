package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// The streaming routes (GET /v1/events, GET /v1/calls/{id}/signaling)
// answer NDJSON: one JSON value a line. A stream that fails after its
// header was sent ends with an {"error": …} line.

// The longest lines the client reads. The server bounds neither: an
// event line is a few hundred bytes; a signaling line holds one payload,
// which the daemon keeps within its per-call bound of 1 MiB, in base64.
const (
	maxEventLine     = 1 << 20
	maxSignalingLine = 4 << 20
)

// lines streams GET path and calls fn with each line (without the
// newline; lines of at most maxLine bytes). It returns nil when the
// server ends the stream, fn's error, ctx's error, or the API error of an
// error answer or of a final {"error": …} line. what names the stream in
// a read error.
func (c *Client) lines(ctx context.Context, path, what string, maxLine int, fn func(line []byte) error) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return apiError(resp.StatusCode, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if bytes.HasPrefix(line, []byte(`{"error"`)) {
			return apiError(resp.StatusCode, line)
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading the %s: %w", what, err)
	}
	return nil
}
