package fsm

import (
	"math"
	"slices"
	"time"

	"github.com/calld/calld"
)

// Cause is why a call is being hung up; it selects the discard reason.
type Cause string

// Causes.
const (
	CauseDiscard     Cause = "discard"      // a hang-up asked for by the user or the API
	CauseDecline     Cause = "decline"      // an incoming call refused (user or policy)
	CauseFail        Cause = "fail"         // a key, protocol, media or RPC failure
	CauseTimeout     Cause = "timeout"      // the receive or ring timer fired
	CauseMaxDuration Cause = "max_duration" // the call lasted longer than allowed
	CauseRestart     Cause = "restart"      // found live after a daemon restart
)

// ValidReason reports whether r is a reason a discard can carry on the wire.
func ValidReason(r calld.Reason) bool {
	switch r {
	case calld.ReasonMissed, calld.ReasonBusy, calld.ReasonHangup, calld.ReasonDisconnect:
		return true
	}
	return false
}

// accepted reports whether the call got past acceptance: the peer
// accepted our outgoing call, or we accepted the incoming one.
func accepted(c calld.Call) bool {
	if c.ActiveAt != nil {
		return true
	}
	switch c.State {
	case calld.StateExchangingKeys, calld.StateActive:
		return true
	case calld.StateAccepting:
		return c.Direction == calld.DirectionIncoming
	}
	return false
}

// DiscardReason decides the reason of a discard (calls.md §5b).
//
// A call that is hanging up or ended keeps the reason it has. Otherwise an
// explicit requested reason (missed, busy, hangup, disconnect) wins; "" and
// auto let the daemon choose:
//   - fail: disconnect;
//   - max_duration: hangup;
//   - timeout: missed if never accepted, else disconnect;
//   - restart: RestartReason;
//   - discard, decline: outgoing not accepted: missed; incoming not
//     accepted: busy; accepted: hangup.
func DiscardReason(c calld.Call, requested calld.Reason, cause Cause) calld.Reason {
	if !c.State.Live() || c.State == calld.StateHangingUp {
		return c.Reason
	}
	if ValidReason(requested) {
		return requested
	}
	switch cause {
	case CauseFail:
		return calld.ReasonDisconnect
	case CauseMaxDuration:
		return calld.ReasonHangup
	case CauseTimeout:
		if accepted(c) {
			return calld.ReasonDisconnect
		}
		return calld.ReasonMissed
	case CauseRestart:
		return RestartReason(c)
	}
	switch {
	case accepted(c):
		return calld.ReasonHangup
	case c.Direction == calld.DirectionOutgoing:
		return calld.ReasonMissed
	default:
		return calld.ReasonBusy
	}
}

// RestartReason is the reason to discard a call found live after a
// restart: disconnect if it was active, else missed (outgoing) or busy
// (incoming).
func RestartReason(c calld.Call) calld.Reason {
	switch {
	case c.State == calld.StateActive || c.ActiveAt != nil:
		return calld.ReasonDisconnect
	case c.Direction == calld.DirectionOutgoing:
		return calld.ReasonMissed
	default:
		return calld.ReasonBusy
	}
}

// Duration is the whole seconds since activeAt: 0 if the call was never
// active or the clock went backwards, at most math.MaxInt32.
func Duration(activeAt *time.Time, now time.Time) int32 {
	if activeAt == nil {
		return 0
	}
	d := now.Sub(*activeAt)
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(s)
}

// ConnectionID is the connection_id to send: the relay the media side
// reported, if the call was active and the id is one of its connections,
// else 0.
func ConnectionID(c calld.Call) int64 {
	if c.ActiveAt == nil || c.ConnectionID == 0 || !hasConnection(c.Connections, c.ConnectionID) {
		return 0
	}
	return c.ConnectionID
}

func hasConnection(conns []calld.Connection, id int64) bool {
	return slices.ContainsFunc(conns, func(k calld.Connection) bool { return k.ID == id })
}

// Video is the video flag of a discard: the sticky OR of the call's flag
// (the request's and every server flag seen), the server flag at hand and
// local video.
func Video(c calld.Call, server bool) bool {
	return c.Video || server || c.LocalVideo
}

// Stale reports whether a call dated date (unix seconds) can no longer be
// ringing: date + ring < now. now is the server's clock (the date of the
// Updates that brought the call), not the local one. A ring of 0 or less
// means DefaultRing.
func Stale(date int, ring time.Duration, now time.Time) bool {
	if ring <= 0 {
		ring = DefaultRing
	}
	return time.Unix(int64(date), 0).Add(ring).Before(now)
}
