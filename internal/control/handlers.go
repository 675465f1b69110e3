package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
)

func (s *Server) routes() {
	s.handle("GET /v1/status", false, s.getStatus)
	s.handle("GET /v1/health", false, s.getHealth)
	s.handle("GET /v1/calls", false, s.getCalls)
	s.handle("POST /v1/calls", true, s.postCall)
	s.handle("GET /v1/calls/{id}", false, s.getCall)
	s.handle("POST /v1/calls/{id}/discard", true, s.postDiscard)
	s.handle("POST /v1/calls/{id}/accept", true, s.postAccept)
	s.handle("GET /v1/calls/{id}/media", true, s.getMedia)
	s.handle("POST /v1/calls/{id}/connection", true, s.postConnection)
	s.handle("GET /v1/events", false, s.getEvents)
	s.handle("POST /v1/login", true, s.postLogin)
	s.mediaRoutes()
	if s.opts.Metrics != nil {
		s.handle("GET /metrics", false, s.getMetrics)
	}
}

// getMetrics serves the daemon's metrics in the Prometheus formats.
func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) error {
	s.opts.Metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.svc.Status(r.Context())
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, st)
	return nil
}

// getHealth is derived from the status (calld.HealthOf): 200 when
// healthy, 503 with the checks when degraded.
func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) error {
	st, err := s.svc.Status(r.Context())
	if err != nil {
		return err
	}
	h := calld.HealthOf(st)
	code := http.StatusOK
	if !h.Healthy() {
		code = http.StatusServiceUnavailable
	}
	s.writeJSON(w, code, h)
	return nil
}

func (s *Server) getCalls(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	all, err := boolParam(q, "all", false)
	if err != nil {
		return err
	}
	calls, err := s.svc.Calls(r.Context(), all)
	if err != nil {
		return err
	}
	if calls == nil {
		calls = []calld.Call{}
	}
	for i := range calls {
		calls[i] = utcCall(calls[i])
	}
	s.writeJSON(w, http.StatusOK, calld.CallsBody{Calls: calls})
	return nil
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c, err := s.svc.Call(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, utcCall(c))
	return nil
}

func (s *Server) postCall(w http.ResponseWriter, r *http.Request) error {
	var req calld.PlaceRequest
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	if err := calld.ValidPeer(req.Peer); err != nil {
		return err
	}
	c, err := s.svc.Place(r.Context(), req.Peer, req.Video, req.Protocol)
	if err != nil {
		return err
	}
	if c.ID != 0 {
		w.Header().Set("Location", "/v1/calls/"+strconv.FormatInt(c.ID, 10))
	}
	s.writeJSON(w, http.StatusCreated, utcCall(c))
	return nil
}

func (s *Server) postDiscard(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req calld.DiscardRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	reason, err := calld.ParseReason(string(req.Reason))
	if err != nil {
		return err
	}
	c, err := s.svc.Discard(r.Context(), id, reason)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, utcCall(c))
	return nil
}

func (s *Server) postAccept(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req calld.AcceptRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	c, err := s.svc.Accept(r.Context(), id, req.Protocol)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, utcCall(c))
	return nil
}

func (s *Server) getMedia(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	m, err := s.svc.Media(r.Context(), id)
	if err != nil {
		return err
	}
	if m.Connections == nil {
		m.Connections = []calld.MediaConnection{}
	}
	if m.Protocol.LibraryVersions == nil {
		m.Protocol.LibraryVersions = []string{}
	}
	s.writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) postConnection(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		ConnectionID json.RawMessage `json:"connection_id"`
	}
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	if len(req.ConnectionID) == 0 || string(req.ConnectionID) == "null" {
		return invalidf("connection_id is required")
	}
	text := string(req.ConnectionID)
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(req.ConnectionID, &text); err != nil {
			return invalidf("connection_id: %s", jsonErrorText(err))
		}
	}
	connID, err := parseID("connection_id", text)
	if err != nil {
		return err
	}
	c, err := s.svc.SetConnection(r.Context(), id, connID)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, utcCall(c))
	return nil
}

func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) error {
	var step calld.LoginStep
	if err := decodeBody(r, &step, false); err != nil {
		return err
	}
	n := 0
	for _, v := range []string{step.Phone, step.Code, step.Password} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return invalidf("a login step carries at most one of phone, code, password")
	}
	st, err := s.svc.Login(r.Context(), step)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, st)
	return nil
}

// getEvents streams events as NDJSON; see the package documentation.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) error {
	follow, since, replay, err := streamParams(r)
	if err != nil {
		return err
	}
	if !follow {
		replay = true
	}

	var sub *Subscription
	if follow && r.Method != http.MethodHead {
		// Subscribe before the replay so that nothing published while
		// the journal is read is missed; duplicates are skipped by seq.
		sub = s.hub.Subscribe()
		defer sub.Close()
	}

	ctx := r.Context()
	nd := s.ndjson(w)
	if r.Method == http.MethodHead {
		return nd.start()
	}

	last := since
	if replay {
		var done bool
		if last, done, err = s.replayEvents(ctx, nd, since); done {
			return err
		}
	}
	if err := nd.start(); err != nil || !follow {
		return nil
	}
	s.followEvents(ctx, nd, sub, replay, last)
	return nil
}

// replayEvents writes the journal's events after since and returns the
// last seq written. done says the request ends here, answered with err
// when nothing was written yet; a failure after the first line ends the
// stream with an error line.
func (s *Server) replayEvents(ctx context.Context, nd *ndjsonWriter, since uint64) (last uint64, done bool, err error) {
	last = since
	var writeErr error
	err = s.svc.Journal(since, func(ev calld.Event) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errShutdown
		default:
		}
		ev.At = ev.At.UTC()
		if err := nd.line(ev); err != nil {
			writeErr = err
			return err
		}
		if ev.Seq > last {
			last = ev.Seq
		}
		return nil
	})
	switch {
	case writeErr != nil || ctx.Err() != nil || errors.Is(err, errShutdown):
		return last, true, nil // the client is gone or we are stopping
	case err != nil && !nd.started:
		return last, true, err // an ordinary error answer
	case err != nil:
		s.streamError(nd.line, calld.ErrorCode(err), calld.ErrorMessage(err))
		return last, true, nil
	}
	return last, false, nil
}

// followEvents writes the events published on sub until the client goes,
// the server stops or sub ends (with an error line when the reader fell
// behind). After a replay, events up to last were sent already.
func (s *Server) followEvents(ctx context.Context, nd *ndjsonWriter, sub *Subscription, replay bool, last uint64) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case ev, ok := <-sub.C:
			if !ok {
				if sub.Dropped() {
					s.streamError(nd.line, calld.CodeSlowReader, fmt.Sprintf(
						"event stream dropped: the reader fell behind by more than %d events; reconnect with ?since=%d",
						s.hub.buffer, last))
				}
				return
			}
			if replay && ev.Seq != 0 && ev.Seq <= last {
				continue // already sent by the replay
			}
			ev.At = ev.At.UTC()
			if err := nd.line(ev); err != nil {
				return
			}
			if ev.Seq > last {
				last = ev.Seq
			}
		}
	}
}

// utcCall returns c with every time in UTC (CONTRACT §3: RFC 3339 UTC).
func utcCall(c calld.Call) calld.Call {
	for _, t := range []**time.Time{&c.CreatedAt, &c.RingingAt, &c.ActiveAt, &c.EndedAt, &c.Deadline} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return c
}

var errShutdown = errors.New("control: server shutting down")

func (s *Server) streamError(writeLine func(any) error, code, msg string) {
	s.log.Warn().Str(logging.FieldEvent, logging.EventControlEvents).Str(logging.FieldCode, code).Msg(msg)
	_ = writeLine(calld.ErrorBody{Error: calld.ErrorDetail{Code: code, Message: msg}})
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func pathID(r *http.Request) (int64, error) {
	return parseID("call id", r.PathValue("id"))
}

// parseID parses a 64-bit id given as decimal digits with an optional
// minus sign (Telegram's ids are signed 64-bit values).
func parseID(what, s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	if !isDigits(digits) {
		return 0, invalidf("%s %q is not a decimal integer", what, s)
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalidf("%s %q is out of the range of a 64-bit integer", what, s)
	}
	return id, nil
}

func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidf("malformed query string: %v", err)
	}
	return q, nil
}

// boolParam reads a boolean query parameter; present without a value
// ("?all") means true.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	if !q.Has(name) {
		return def, nil
	}
	v := q.Get(name)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalidf("%s=%q is not a boolean (use 1 or 0)", name, v)
	}
	return b, nil
}
