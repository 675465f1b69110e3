package logging

// The log schema (CONTRACT §4, documented in docs/logging.md). Every line
// has FieldTime, FieldLevel, FieldEvent and FieldMessage; the writer adds
// what a caller left out. A test checks that docs/logging.md names every
// constant of this file, that event names are dotted and field keys
// snake_case, and that no field is a secret.

// Events: the stable machine name of a line, in FieldEvent.
const (
	// daemon
	EventDaemonStarting = "daemon.starting" // version, config: configuration loaded, starting up
	EventDaemonReady    = "daemon.ready"    // socket, state_path: serving, after READY=1
	EventDaemonReload   = "daemon.reload"   // signal, log_level, err: SIGHUP handled (log level re-read)
	EventDaemonStopping = "daemon.stopping" // signal: shutdown begins
	EventDaemonStopped  = "daemon.stopped"  // err: shutdown finished, the process exits
	EventDaemonWatchdog = "daemon.watchdog" // result, err: the health check behind WATCHDOG=1 failed or recovered

	// telegram connection and account
	EventTelegramConnected    = "telegram.connected"    // dc, self_id
	EventTelegramDisconnected = "telegram.disconnected" // dc, err
	EventTelegramLogin        = "telegram.login"        // step, phone (masked), result, err: a login step
	EventTelegramAuthorized   = "telegram.authorized"   // self_id: the session is logged in
	EventTelegramFloodWait    = "telegram.flood_wait"   // method, wait: FLOOD_WAIT received, waiting
	EventMTProto              = "mtproto.log"           // component: a line of gotd's own logging

	// calls
	EventCallState   = "call.state"   // call_id, from, to, direction, peer_id: every state transition
	EventCallRPC     = "call.rpc"     // call_id, method, result, err: a phone.* request other than discardCall answered
	EventCallDiscard = "call.discard" // call_id, reason, duration, connection_id, video, result: phone.discardCall sent / answered
	EventCallEnded   = "call.ended"   // call_id, reason, ended_by, duration: a call reached ended
	EventCallIgnored = "call.ignored" // call_id, constructor, state: an update that changed nothing (duplicate, stale, unknown call)

	// updates state
	EventUpdatesGap        = "updates.gap"        // box, local, remote: a pts/qts/seq gap was detected
	EventUpdatesDifference = "updates.difference" // from_pts, to_pts, seq, updates: getDifference finished
	EventUpdatesState      = "updates.state"      // pts, qts, seq, date: state loaded or reset (e.g. differenceTooLong)

	// local plumbing
	EventStoreError     = "store.error"     // op, err: a bbolt read or write failed
	EventControlRequest = "control.request" // method, path, status, uid, pid, elapsed: a control API request
	EventLog            = "log"             // written by the writer for a line whose caller set no event
)

// Fields: the keys of a line's other members. 64-bit Telegram ids (call_id,
// peer_id, self_id, connection_id) are written as decimal strings, as in
// the control API.
const (
	// on every line
	FieldTime    = "time"    // RFC 3339 UTC with microseconds, e.g. 2026-01-02T15:04:05.123456Z
	FieldLevel   = "level"   // debug, info, warn, error
	FieldEvent   = "event"   // one of the Event constants
	FieldMessage = "message" // human text; may be empty

	// general
	FieldErr       = "err"       // an error's text
	FieldComponent = "component" // the part of the daemon, e.g. "mtproto"
	FieldResult    = "result"    // "ok" or an error type (CALL_PEER_INVALID, FLOOD_WAIT, ...)
	FieldVersion   = "version"   // calld's version
	FieldConfig    = "config"    // configuration file path ("" for defaults only)
	FieldSignal    = "signal"    // e.g. "terminated", "hangup"
	FieldSocket    = "socket"    // control socket path
	FieldStatePath = "state_path"
	FieldOp        = "op"        // what a store operation was doing
	FieldElapsed   = "elapsed"   // float seconds a request or step took
	FieldStep      = "step"      // login step: phone, code, password, done
	FieldLogLevel  = "log_level" // the log level after a reload

	// telegram
	FieldDC     = "dc"      // DC id
	FieldSelfID = "self_id" // the logged-in user id (string)
	FieldPhone  = "phone"   // always masked with MaskPhone
	FieldMethod = "method"  // RPC method or HTTP method
	FieldWait   = "wait"    // float seconds of a FLOOD_WAIT

	// calls
	FieldCallID       = "call_id"       // string
	FieldFrom         = "from"          // previous state
	FieldTo           = "to"            // new state
	FieldState        = "state"         // current state
	FieldDirection    = "direction"     // incoming or outgoing
	FieldPeerID       = "peer_id"       // string
	FieldReason       = "reason"        // missed, busy, hangup, disconnect
	FieldEndedBy      = "ended_by"      // local, remote, other_device, timeout, error
	FieldDuration     = "duration"      // whole seconds of connected time
	FieldConnectionID = "connection_id" // string; "0" when none
	FieldVideo        = "video"         // bool
	FieldConstructor  = "constructor"   // TL constructor of an update, e.g. phoneCallDiscarded

	// updates
	FieldBox     = "box"      // pts, qts or seq
	FieldLocal   = "local"    // our value
	FieldRemote  = "remote"   // the server's value
	FieldFromPts = "from_pts" // pts before getDifference
	FieldToPts   = "to_pts"   // pts after getDifference
	FieldPts     = "pts"
	FieldQts     = "qts"
	FieldSeq     = "seq"
	FieldDate    = "date"
	FieldUpdates = "updates" // number of updates a difference returned

	// control requests
	FieldPath   = "path"   // URL path
	FieldStatus = "status" // HTTP status
	FieldUID    = "uid"    // peer uid (SO_PEERCRED)
	FieldPID    = "pid"    // peer pid
)

// SecretFields are keys that must never appear on a log line: the writer
// replaces their values with "[redacted]" should a caller write one.
var SecretFields = []string{
	"api_hash", "auth_key", "authkey", "key", "session", "code", "phone_code",
	"password", "password_hash", "srp", "peer_tag", "g_a", "g_b", "g_a_hash",
	"token", "secret",
}
