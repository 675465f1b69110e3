package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
)

// StatusCode maps an error code to its HTTP status (CONTRACT §3): calld's
// own codes to 400/401/403/404/409/500/503/504, any other code (Telegram's
// error types such as CALL_PEER_INVALID or FLOOD_WAIT) to 502.
func StatusCode(code string) int {
	switch code {
	case calld.EINVALID:
		return http.StatusBadRequest
	case calld.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case calld.EFORBIDDEN:
		return http.StatusForbidden
	case calld.ENOTFOUND:
		return http.StatusNotFound
	case calld.ECONFLICT:
		return http.StatusConflict
	case calld.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case calld.ETIMEOUT:
		return http.StatusGatewayTimeout
	case calld.EINTERNAL, "":
		return http.StatusInternalServerError
	default:
		return http.StatusBadGateway
	}
}

// statusError is an API error whose HTTP status is not the code's usual
// one (413 and 405 with code "invalid").
type statusError struct {
	status int
	code   string
	msg    string
}

func (e *statusError) Error() string { return e.code + ": " + e.msg }

func invalidf(format string, args ...any) error {
	return calld.Errorf(calld.EINVALID, format, args...)
}

func (s *Server) writeError(w http.ResponseWriter, err error) {
	var se *statusError
	var body calld.ErrorBody
	status := 0
	if errors.As(err, &se) {
		status, body.Error.Code, body.Error.Message = se.status, se.code, se.msg
	} else {
		body.Error.Code, body.Error.Message = calld.ErrorCode(err), calld.ErrorMessage(err)
		status = StatusCode(body.Error.Code)
	}
	if status >= 500 {
		s.log.Warn().Str(logging.FieldEvent, logging.EventControlError).Str(logging.FieldCode, body.Error.Code).
			Msg(body.Error.Message)
	}
	s.writeJSON(w, status, body)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(calld.ErrorBody{Error: calld.ErrorDetail{Code: calld.EINTERNAL, Message: fmt.Sprintf("encoding the response: %v", err)}})
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		s.log.Debug().Str(logging.FieldEvent, logging.EventControlWrite).Err(err).Msg("writing the response")
	}
}

// decodeBody reads a JSON object into v strictly: unknown fields, wrong
// types and trailing data are invalid. An empty body leaves v untouched
// and is an error only if required.
func decodeBody(r *http.Request, v any, required bool) error {
	var data []byte
	if r.Body != nil {
		var err error
		data, err = io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return &statusError{
					status: http.StatusRequestEntityTooLarge,
					code:   calld.EINVALID,
					msg:    fmt.Sprintf("request body is larger than %d bytes", mbe.Limit),
				}
			}
			return invalidf("reading the request body: %v", err)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if required {
			return invalidf("a JSON request body is required")
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf("malformed JSON body: %s", jsonErrorText(err))
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return invalidf("malformed JSON body: unexpected data after the JSON object")
	}
	return nil
}

// jsonErrorText turns encoding/json's errors into messages that name the
// field and not Go types.
func jsonErrorText(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		if ute.Field != "" {
			return fmt.Sprintf("field %q: expected %s, got %s", ute.Field, jsonKind(ute.Type.Kind().String()), ute.Value)
		}
		return fmt.Sprintf("expected a JSON object, got %s", ute.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	default:
		return "a number"
	}
}
