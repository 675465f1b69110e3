package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The streaming routes (GET /v1/events, GET /v1/calls/{id}/signaling)
// answer NDJSON: one JSON value a line, flushed line by line, each write
// bounded by the server's WriteTimeout. A stream that fails after its
// header was sent ends with an {"error": …} line.

// ndjsonWriter writes one NDJSON answer; the header goes out with the
// first line, or at start.
type ndjsonWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	started bool
}

func (s *Server) ndjson(w http.ResponseWriter) *ndjsonWriter {
	return &ndjsonWriter{w: w, rc: http.NewResponseController(w), timeout: s.opts.WriteTimeout}
}

// start sends the header (once).
func (n *ndjsonWriter) start() error {
	if n.started {
		return nil
	}
	n.started = true
	h := n.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	n.w.WriteHeader(http.StatusOK)
	return n.rc.Flush()
}

// line writes v as one line and flushes it.
func (n *ndjsonWriter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding a line: %w", err)
	}
	if err := n.start(); err != nil {
		return err
	}
	_ = n.rc.SetWriteDeadline(time.Now().Add(n.timeout))
	if _, err := n.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return n.rc.Flush()
}

// streamParams are a streaming route's ?follow= (default true) and
// ?since=N: N, and whether it was given.
func streamParams(r *http.Request) (follow bool, since uint64, hasSince bool, err error) {
	q, err := query(r)
	if err != nil {
		return false, 0, false, err
	}
	if follow, err = boolParam(q, "follow", true); err != nil {
		return false, 0, false, err
	}
	since, hasSince, err = sinceParam(q)
	return follow, since, hasSince, err
}

func sinceParam(q url.Values) (uint64, bool, error) {
	if !q.Has("since") {
		return 0, false, nil
	}
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if err != nil {
		return 0, true, invalidf("since %q is not a non-negative decimal sequence number", q.Get("since"))
	}
	return since, true, nil
}

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
