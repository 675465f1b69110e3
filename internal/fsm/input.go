package fsm

import (
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
)

// Default timeouts, Telegram's call_receive_timeout_ms and
// call_ring_timeout_ms defaults, and the watchdog of a hang-up that waits
// for the requestCall result (Telegram Desktop, Android: 5 s).
const (
	DefaultReceive = 20 * time.Second
	DefaultRing    = 90 * time.Second
	DefaultHangup  = 5 * time.Second
)

// Timeouts are a call's timers. A zero or negative Receive, Ring or Hangup
// means its default; a zero MaxDuration means no limit.
type Timeouts struct {
	Receive     time.Duration // requesting, outgoing waiting, accepting, key exchange
	Ring        time.Duration // ringing (either side); incoming waiting
	MaxDuration time.Duration // active; 0 = none
	Hangup      time.Duration // requesting with a hang-up pending: give up waiting for the id
}

// WithDefaults returns t with its zero fields set to the defaults.
func (t Timeouts) WithDefaults() Timeouts {
	if t.Receive <= 0 {
		t.Receive = DefaultReceive
	}
	if t.Ring <= 0 {
		t.Ring = DefaultRing
	}
	if t.Hangup <= 0 {
		t.Hangup = DefaultHangup
	}
	if t.MaxDuration < 0 {
		t.MaxDuration = 0
	}
	return t
}

// Input is what a Machine handles: Remote, Local, Timer or RPCResult.
type Input interface{ input() }

// Remote is a PhoneCall constructor for this call, pushed in an
// updatePhoneCall or returned by an RPC (FromRPC). Any constructor is
// accepted; what does not fit the state is ignored. The machine treats a
// constructor the same whichever way it came (the server sends the same
// object both ways); FromRPC is kept for the caller's logs.
type Remote struct {
	Call    tg.PhoneCallClass
	FromRPC bool
}

// LocalAction is what the local side asks of a call.
type LocalAction string

// Local actions.
const (
	Acknowledge   LocalAction = "acknowledge"    // phone.receivedCall succeeded: an incoming call rings
	Accept        LocalAction = "accept"         // accept an incoming ringing call
	Confirm       LocalAction = "confirm"        // phone.confirmCall was sent: restart the receive timer
	Discard       LocalAction = "discard"        // hang up / refuse (user, API); Reason "" or auto = choose
	Decline       LocalAction = "decline"        // refuse an incoming call not yet accepted (user, policy): busy
	Fail          LocalAction = "fail"           // key, protocol or media failure: disconnect, ended_by error
	SetConnection LocalAction = "set_connection" // the media side reports the relay in use
	SetVideo      LocalAction = "set_video"      // the local side turned video on (sticky)
	Resend        LocalAction = "resend"         // re-issue the discard of a hanging_up call (after a restart)
)

// Local is a request from the local side: the API, a policy or the media
// engine.
type Local struct {
	Action       LocalAction
	Reason       calld.Reason // Discard, Decline: an explicit reason, or "" / auto
	ConnectionID int64        // SetConnection
	Video        bool         // SetVideo
	Message      string       // Fail: what failed (kept in Call.Error)
}

// TimerKind names the timer a call's Deadline belongs to
// (Call.DeadlineKind).
type TimerKind string

// Timers.
const (
	TimerReceive     TimerKind = "receive"
	TimerRing        TimerKind = "ring"
	TimerMaxDuration TimerKind = "max_duration"
	TimerHangup      TimerKind = "hangup"
)

// Timer says a call's timer fired. The manager sends it when
// Call().Deadline has passed (see Machine.Due); a timer that is not the
// call's current one, or not yet due, is ignored.
type Timer struct {
	Kind TimerKind
}

// Method names the RPCs whose outcome a Machine handles.
type Method string

// Methods.
const (
	MethodReceived Method = "phone.receivedCall"
	MethodRequest  Method = "phone.requestCall"
	MethodAccept   Method = "phone.acceptCall"
	MethodConfirm  Method = "phone.confirmCall"
	MethodDiscard  Method = "phone.discardCall"
)

// RPCResult is the outcome of an RPC the call issued. Err is classified
// with tgerr (wrapped errors work). A successful result's PhoneCall, if
// any, is fed separately as a Remote with FromRPC set.
type RPCResult struct {
	Method Method
	Err    error
	// TimedOut: the RPC got no answer in time (Err says so), or one that
	// says Telegram executed none of it (the manager sets it for a
	// discard answered with a 401). For a discard that is no answer
	// recorded: the call stays hanging_up and its machine honours one
	// Resend of the same discard.
	TimedOut bool
}

func (Remote) input()    {}
func (Local) input()     {}
func (Timer) input()     {}
func (RPCResult) input() {}

// Action is what the manager must do after a Step.
type Action interface{ action() }

// SendAccept: call phone.acceptCall (with our g_b).
type SendAccept struct{}

// SendConfirm: call phone.confirmCall (with our g_a and the fingerprint).
type SendConfirm struct{}

// SendDiscard: call phone.discardCall with exactly these values. A call
// issues at most one SendDiscard (Resend after a restart or a timed-out
// send repeats it, same values).
type SendDiscard struct {
	Reason       calld.Reason
	Duration     int32
	ConnectionID int64
	Video        bool
}

// SendReceived: call phone.receivedCall. No Step returns it: the manager
// sends it for every call NewIncoming creates (unless a policy declines).
type SendReceived struct{}

func (SendAccept) action()   {}
func (SendConfirm) action()  {}
func (SendDiscard) action()  {}
func (SendReceived) action() {}

// Transition is one state change; the manager journals each.
type Transition struct {
	From, To calld.State
	Event    string       // the table's event name
	Reason   calld.Reason // set when To is HangingUp or Ended
	Duration int          // set when To is HangingUp or Ended
}

// Step is what one Input did.
type Step struct {
	// Transitions are the state changes, in order (0 or 1 today).
	Transitions []Transition
	// Ignored says why the input did not fit (duplicate, wrong
	// constructor for the state, another call's id, after ended). Nothing
	// changed.
	Ignored string
	// Actions are the RPCs the manager must issue now.
	Actions []Action
	// Err is a refused local request: a *calld.Error with code invalid or
	// conflict. Nothing changed.
	Err error
	// Changed reports that the record changed and must be persisted.
	Changed bool
}
