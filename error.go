// Package calld is calld's domain: what every part of the daemon and its
// clients share. A Call and its states, an Event of the journal, the
// daemon's Status, a call's Media, the login state, the bodies of the
// control API (CONTRACT §3, §5.5), its error codes, and the services the
// control server serves (CallService, MediaService). It imports no other
// calld package.
//
// The daemon lives under internal/: fsm (the call machine), updates (the
// sequence engine), store (bbolt), mtproto (gotd wiring), manager (the
// single writer, which implements CallService), control (the server),
// daemon (the wiring), sim (the simulated Telegram). The Go client of the
// control API is the public package client; cmd/calld is the binary.
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
