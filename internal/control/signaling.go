package control

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/calld/calld"
)

// The media side of the API (CONTRACT §5.5): the signaling relay, the
// rating and the debug log. A calld.CallService that also implements
// calld.MediaService serves these routes; otherwise they answer 404
// not_found.

// mediaRoutes registers the media routes; all of them carry secrets or
// act, so all need the mutating routes' permission.
func (s *Server) mediaRoutes() {
	s.handle("GET /v1/calls/{id}/signaling", true, s.getSignaling)
	s.handle("POST /v1/calls/{id}/signaling", true, s.postSignaling)
	s.handle("POST /v1/calls/{id}/rating", true, s.postRating)
	s.handle("POST /v1/calls/{id}/debug", true, s.postDebug)
}

// mediaCall returns the media side and the request's call id.
func (s *Server) mediaCall(r *http.Request) (calld.MediaService, int64, error) {
	ms, ok := s.svc.(calld.MediaService)
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
	write := func(p calld.SignalingPayload) error { return nd.line(p) }
	if r.Method == http.MethodHead {
		// The header only (as on /v1/events): the call is checked, not
		// followed.
		follow, write = false, func(calld.SignalingPayload) error { return nil }
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
	s.writeJSON(w, http.StatusOK, calld.SentBody{Sent: true})
	return nil
}

func (s *Server) postRating(w http.ResponseWriter, r *http.Request) error {
	ms, id, err := s.mediaCall(r)
	if err != nil {
		return err
	}
	var req calld.RatingRequest
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
