package control

import (
	"encoding/json"
	"fmt"
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
