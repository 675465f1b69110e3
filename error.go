// Package calld holds what every part of the daemon shares: the error codes
// of the control API (CONTRACT §3) and the helpers to make and read them.
//
// The daemon itself lives in the subpackages: fsm (call lifecycle), updates
// (sequence engine), store (bbolt), mtproto (gotd wiring), sim (simulated
// Telegram), and cmd/calld (the binary).
package calld

import (
	"errors"
	"fmt"
)

// Error codes of the control API. Telegram's own error types (for example
// CALL_PEER_INVALID or FLOOD_WAIT) are used as codes as they are.
const (
	EINVALID      = "invalid"      // 400: malformed request or value
	EUNAUTHORIZED = "unauthorized" // 401: no logged-in session
	EFORBIDDEN    = "forbidden"    // 403: peer uid not allowed
	ENOTFOUND     = "not_found"    // 404: unknown call or route
	ECONFLICT     = "conflict"     // 409: call already ended or being ended
	EUNAVAILABLE  = "unavailable"  // 503: not connected to Telegram
	ETIMEOUT      = "timeout"      // 504: an RPC to Telegram ran out of time while connected
	EINTERNAL     = "internal"     // 500: a bug or a local failure (disk)
)

// Error is an error with a stable code and a human message.
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("calld: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EINTERNAL for any other non-nil error, or "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// err.Error() for any other error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
