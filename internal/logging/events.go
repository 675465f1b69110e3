package logging

// The log schema (CONTRACT §4, documented in docs/logging.md). Every line
// has FieldTime, FieldLevel, FieldEvent and FieldMessage; the writer adds
// what a caller left out. Tests check that docs/logging.md's tables list
// exactly the constants of this file, that event names are dotted and
// field keys snake_case, that no field is a secret, and that no code
// outside this package logs an event name or a field key as a literal.

// Events: the stable machine name of a line, in FieldEvent.
const (
	// daemon
	EventDaemonReady    = "daemon.ready"    // socket, state_path: serving, after READY=1
	EventDaemonReload   = "daemon.reload"   // SIGHUP handled: configuration (log level, policy) re-read
	EventDaemonStopping = "daemon.stopping" // signal: shutdown begins
	EventDaemonWatchdog = "daemon.watchdog" // result, err: the health check behind WATCHDOG=1 failed or recovered
	EventDaemonFailed   = "daemon.failed"   // err: start-up or a part of the daemon failed; just before daemon.stopped
	EventDaemonStopped  = "daemon.stopped"  // reason, signal, err: Run returns; the last line
	EventDaemonMetrics  = "daemon.metrics"  // addr: [metrics] listen serves /metrics; warn: a reload changed it and it is kept

	// telegram connection
	EventTelegramConnected    = "telegram.connected"    // dc
	EventTelegramDisconnected = "telegram.disconnected" // dc, err
	EventTelegramDial         = "telegram.dial"         // dc, addr, err: a DC address could not be reached
	EventTelegramUnauthorized = "telegram.unauthorized" // method, err: the session was logged out while calld ran
	EventTelegramAuthorized   = "telegram.authorized"   // self_id: logged in again after telegram.unauthorized

	// the MTProto client (package mtproto)
	EventMTProtoLogin   = "mtproto.login"   // phone (masked), self_id, err: a login step
	EventMTProtoRetry   = "mtproto.retry"   // method, attempt, wait, err: an RPC is retried
	EventMTProtoUpdates = "mtproto.updates" // err: pushed updates could not be handed on
	EventMTProtoGotd    = "mtproto.gotd"    // component, logger, ...: a line of gotd's own (zap) logging

	// calls
	EventCallState   = "call.state"   // call_id, from, to, direction, peer_id: every state transition
	EventCallDiscard = "call.discard" // call_id, reason, duration, connection_id, video, result: phone.discardCall sent / answered
	EventCallEnded   = "call.ended"   // call_id, reason, ended_by, duration: a call reached ended
	EventCallIgnored = "call.ignored" // call_id, constructor, state, err: an input that changed nothing (duplicate, stale, unknown call, failed RPC)
	// Media side (debug level for signaling; never the payloads).
	EventCallSignaling = "call.signaling" // call_id, direction, seq, bytes, result: a signaling payload kept (incoming) or sent (outgoing)
	EventCallRated     = "call.rated"     // call_id, rating, result: phone.setCallRating answered (also a journal event)
	EventCallDebug     = "call.debug"     // call_id, bytes, result: phone.saveCallDebug answered (also a journal event)

	// updates state
	EventUpdatesGap        = "updates.gap"               // box, local, remote: a pts/qts/seq gap was detected
	EventUpdatesDifference = "updates.difference"        // from_pts, to_pts, seq, updates: getDifference finished
	EventUpdatesDiffFailed = "updates.difference_failed" // from_pts, err: getDifference failed, retried with a backoff
	EventUpdatesReceived   = "updates.received"          // constructor, own, dispatched, pts, seq, in_flight: debug trace of every Updates

	// local plumbing
	EventStoreError       = "store.error"        // err: a bbolt read or write failed
	EventControlRequest   = "control.request"    // method, path, status, duration, uid, pid: a control API request served
	EventControlError     = "control.error"      // code: a control API request failed with a 5xx
	EventControlEvents    = "control.events"     // code: an /v1/events stream ended with an error line
	EventControlWrite     = "control.write"      // err: writing a response failed (client gone)
	EventControlPeercred  = "control.peercred"   // err: SO_PEERCRED unavailable for a connection
	EventControlPanic     = "control.panic"      // method, path, stack: a handler panicked (answered 500)
	EventControlHTTPError = "control.http_error" // net/http's own error log
	EventControlRefused   = "control.refused"    // uid, refused: connections past a cap answered 503 (rate-limited)
	EventControlAccept    = "control.accept"     // err, failures: accept failing for want of descriptors, and recovering
	EventControlLimits    = "control.limits"     // the descriptor limit is too low for control.max_connections: a lower cap is used
	EventLog              = "log"                // written by the writer for a line whose caller set no event
)

// Fields: the keys of a line's other members. 64-bit Telegram ids (call_id,
// peer_id, connection_id) are written as decimal strings, as in the control
// API. Durations written with zerolog's Dur are float seconds (New sets
// zerolog.DurationFieldUnit).
const (
	// on every line
	FieldTime    = "time"    // RFC 3339 UTC with microseconds, e.g. 2026-01-02T15:04:05.123456Z
	FieldLevel   = "level"   // debug, info, warn, error
	FieldEvent   = "event"   // one of the Event constants
	FieldMessage = "message" // human text; may be empty
	FieldAccount = "account" // [telegram] account, when set: on every line (the writer adds it)

	// general
	FieldErr       = "err"       // an error's text
	FieldComponent = "component" // the part of the daemon, e.g. "mtproto"
	FieldResult    = "result"    // "ok", "failing", or an error type (CALL_PEER_INVALID, FLOOD_WAIT, ...)
	FieldCode      = "code"      // a control API error code (not_found, internal, ...)
	FieldSignal    = "signal"    // e.g. "terminated", "hangup"
	FieldSocket    = "socket"    // control socket path
	FieldStatePath = "state_path"
	FieldStack     = "stack"     // a goroutine stack trace
	FieldTimeout   = "timeout"   // daemon.stopping: the shutdown timeout that ran out (seconds)
	FieldRetryIn   = "retry_in"  // seconds until an operation that failed is tried again
	FieldLogLevel  = "log_level" // daemon.reload: the log level now in force
	FieldIncoming  = "incoming"  // daemon.reload: the incoming-call policy now in force (ring, reject)
	FieldRemoved   = "removed"   // journal entries pruned

	// telegram
	FieldDC      = "dc"      // DC id
	FieldSelfID  = "self_id" // the logged-in user id
	FieldPhone   = "phone"   // always masked with MaskPhone
	FieldMethod  = "method"  // RPC method or HTTP method
	FieldAttempt = "attempt" // retry number, from 1
	FieldWait    = "wait"    // seconds waited before a retry
	FieldLogger  = "logger"  // gotd's logger name (conn, rpc, ...)
	FieldAddr    = "addr"    // telegram.dial: a DC address, host:port

	// calls
	FieldCallID       = "call_id"       // string
	FieldFrom         = "from"          // previous state
	FieldTo           = "to"            // new state
	FieldDirection    = "direction"     // incoming or outgoing
	FieldPeerID       = "peer_id"       // string
	FieldReason       = "reason"        // missed, busy, hangup, disconnect
	FieldEndedBy      = "ended_by"      // local, remote, other_device, timeout, error
	FieldDuration     = "duration"      // call lines: whole seconds of connected time
	FieldConnectionID = "connection_id" // string; "0" when none
	FieldVideo        = "video"         // bool
	FieldDate         = "date"          // a Telegram date (unix seconds)
	FieldBytes        = "bytes"         // size of a signaling payload or debug log (never its content)
	FieldRating       = "rating"        // 1..5
	FieldRandomID     = "random_id"     // the random_id of a phone.requestCall

	// updates
	FieldBox     = "box"      // pts, qts or seq
	FieldLocal   = "local"    // our value
	FieldRemote  = "remote"   // the server's value
	FieldFromPts = "from_pts" // pts before getDifference
	FieldToPts   = "to_pts"   // pts after getDifference
	FieldSeq     = "seq"
	FieldUpdates = "updates" // number of updates a difference returned
	FieldPts     = "pts"     // the engine's pts after an Updates
	FieldOwn     = "own"     // bool: an RPC's result rather than a push

	// updates.received
	FieldDispatched = "dispatched" // updates.received: how many updates the engine handed on
	FieldInFlight   = "in_flight"  // updates.received: bool: a getDifference is running

	// call inputs
	FieldConstructor = "constructor" // TL name of a PhoneCall or Updates constructor
	FieldState       = "state"       // a call's current state

	// control requests
	FieldPath   = "path"   // URL path
	FieldStatus = "status" // HTTP status
	FieldUID    = "uid"    // peer uid (SO_PEERCRED)
	FieldPID    = "pid"    // peer pid
	// control connections
	FieldRefused  = "refused"  // connections refused since the last control.refused line
	FieldFailures = "failures" // accept errors in a row before accepting worked again
)

// secretFields are keys that must never appear on a log line: the writer
// replaces their values with "[redacted]" should a caller write one.
var secretFields = []string{
	"api_hash", "auth_key", "authkey", "key", "session", "login_code", "phone_code",
	"password", "password_hash", "srp", "peer_tag", "g_a", "g_b", "g_a_hash",
	"token", "secret",
}

// secretSet is secretFields as a set (hasSecret, redactMap).
var secretSet = func() map[string]bool {
	m := make(map[string]bool, len(secretFields))
	for _, k := range secretFields {
		m[k] = true
	}
	return m
}()
