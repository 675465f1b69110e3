package control

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
)

// The media side of the API (CONTRACT §5.5): the signaling relay, the
// rating and the debug log. A Service that also implements MediaService
// serves these routes; otherwise they answer 404 not_found.

// MediaService is the media side of the daemon.
type MediaService interface {
	// Signaling calls fn with the call's incoming signaling payloads with
	// seq > since, then (with follow) each new one, until the call ends
	// or ctx is done. A call that is not live is not_found or conflict
	// (before fn is called).
	Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(SignalingPayload) error) error
	// SendSignaling sends one payload to the peer's media engine
	// (phone.sendSignalingData).
	SendSignaling(ctx context.Context, id int64, data []byte) error
	// Rate rates an ended call that asked for it (need_rating), once.
	Rate(ctx context.Context, id int64, rating int, comment string) (fsm.Call, error)
	// SaveDebug sends the media engine's JSON debug log of an ended call
	// that asked for it (need_debug), once.
	SaveDebug(ctx context.Context, id int64, data json.RawMessage) (fsm.Call, error)
}

// SignalingPayload is one line of GET /v1/calls/{id}/signaling: Data is
// standard base64 in JSON.
type SignalingPayload struct {
	Seq  uint64 `json:"seq"`
	Data []byte `json:"data"`
}

// SignalingRequest is the body of POST /v1/calls/{id}/signaling.
type SignalingRequest struct {
	Data []byte `json:"data"`
}

// RatingRequest is the body of POST /v1/calls/{id}/rating.
type RatingRequest struct {
	Rating  int    `json:"rating"`
	Comment string `json:"comment,omitempty"`
}

// SentBody answers POST /v1/calls/{id}/signaling.
type SentBody struct {
	Sent bool `json:"sent"`
}

// mediaRoutes registers the media routes; all of them carry secrets or
// act, so all need the mutating routes' permission.
func (s *Server) mediaRoutes() {
	s.handle("GET /v1/calls/{id}/signaling", true, s.getSignaling)
	s.handle("POST /v1/calls/{id}/signaling", true, s.postSignaling)
	s.handle("POST /v1/calls/{id}/rating", true, s.postRating)
	s.handle("POST /v1/calls/{id}/debug", true, s.postDebug)
}

// mediaCall returns the media side and the request's call id.
func (s *Server) mediaCall(r *http.Request) (MediaService, int64, error) {
	ms, ok := s.svc.(MediaService)
	if !ok {
		return nil, 0, calld.Errorf(calld.ENOTFOUND, "this daemon has no media side")
	}
	id, err := pathID(r)
	return ms, id, err
}

// getSignaling streams the payloads as NDJSON: replay (seq > since), then
// follow (unless follow=0) until the call ends. HEAD answers the header
// (or the error of a call that is not live) at once.
func (s *Server) getSignaling(w http.ResponseWriter, r *http.Request) error {
	ms, id, err := s.mediaCall(r)
	if err != nil {
		return err
	}
	follow, since, _, err := streamParams(r)
	if err != nil {
		return err
	}
	nd := s.ndjson(w)
	ctx, cancel := context.WithCancel(r.Context())
	watched := make(chan struct{})
	go func() { // the handler's: it waits for it before it returns
		defer close(watched)
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		cancel()
		<-watched
	}()
	write := func(p SignalingPayload) error { return nd.line(p) }
	if r.Method == http.MethodHead {
		// The header only (as on /v1/events): the call is checked, not
		// followed.
		follow, write = false, func(SignalingPayload) error { return nil }
	}
	err = ms.Signaling(ctx, id, since, follow, write)
	if err != nil && !nd.started {
		return err // an ordinary error answer (the call is not live)
	}
	_ = nd.start()
	return nil
}

func (s *Server) postSignaling(w http.ResponseWriter, r *http.Request) error {
	ms, id, err := s.mediaCall(r)
	if err != nil {
		return err
	}
	// data is decoded here, not by encoding/json, whose base64 error
	// does not name the field.
	var req struct {
		Data string `json:"data"`
	}
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	if req.Data == "" {
		return invalidf("data is required (a base64 signaling payload)")
	}
	data, err := base64.StdEncoding.DecodeString(req.Data)
	if err != nil {
		return invalidf("data is not standard base64 (%v)", err)
	}
	if err := ms.SendSignaling(r.Context(), id, data); err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, SentBody{Sent: true})
	return nil
}

func (s *Server) postRating(w http.ResponseWriter, r *http.Request) error {
	ms, id, err := s.mediaCall(r)
	if err != nil {
		return err
	}
	var req RatingRequest
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	if req.Rating < 1 || req.Rating > 5 {
		return invalidf("rating %d is not 1..5", req.Rating)
	}
	c, err := ms.Rate(r.Context(), id, req.Rating, req.Comment)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, utcCall(c))
	return nil
}

func (s *Server) postDebug(w http.ResponseWriter, r *http.Request) error {
	ms, id, err := s.mediaCall(r)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeBody(r, &struct{}{}, true) // the body's read error, as decodeBody words it
	}
	if len(bytes.TrimSpace(data)) == 0 || !json.Valid(data) {
		return invalidf("the body must be the media engine's JSON debug log")
	}
	c, err := ms.SaveDebug(r.Context(), id, json.RawMessage(data))
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, utcCall(c))
	return nil
}

// Signaling streams GET /v1/calls/{id}/signaling?since=N (follow: until
// the call ends; without: the payloads kept, then the end) and calls fn
// with each payload. It returns nil when the stream ends.
func (c *Client) Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(SignalingPayload) error) error {
	path := callPath(id, "/signaling?since="+strconv.FormatUint(since, 10))
	if !follow {
		path += "&follow=0"
	}
	// A line holds one payload of up to the relay's per-call bound, in
	// base64.
	return c.lines(ctx, path, "signaling stream", 4<<20, func(line []byte) error {
		var p SignalingPayload
		if err := json.Unmarshal(line, &p); err != nil {
			return fmt.Errorf("signaling stream: %w", err)
		}
		return fn(p)
	})
}

// SendSignaling is POST /v1/calls/{id}/signaling.
func (c *Client) SendSignaling(ctx context.Context, id int64, data []byte) error {
	return c.do(ctx, http.MethodPost, callPath(id, "/signaling"), SignalingRequest{Data: data}, &SentBody{})
}

// Rate is POST /v1/calls/{id}/rating.
func (c *Client) Rate(ctx context.Context, id int64, rating int, comment string) (fsm.Call, error) {
	var call fsm.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/rating"), RatingRequest{Rating: rating, Comment: comment}, &call)
	return call, err
}

// SaveDebug is POST /v1/calls/{id}/debug with the engine's JSON debug log.
func (c *Client) SaveDebug(ctx context.Context, id int64, debugJSON json.RawMessage) (fsm.Call, error) {
	var call fsm.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/debug"), debugJSON, &call)
	return call, err
}
