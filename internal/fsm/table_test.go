package fsm

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
)

func TestTableWellFormed(t *testing.T) {
	seen := map[[2]string]bool{}
	dirs := map[string]calld.Direction{}
	for _, r := range Table() {
		if d, ok := dirs[r.Event]; ok && d != r.Dir {
			t.Errorf("event %s has two directions", r.Event)
		}
		dirs[r.Event] = r.Dir
		for _, s := range r.Src {
			k := [2]string{r.Event, string(s)}
			if seen[k] {
				t.Errorf("duplicate row %v", k)
			}
			seen[k] = true
			if s == calld.StateEnded {
				t.Errorf("event %s leaves ended", r.Event)
			}
			if rank(r.Dst) < rank(s) || (rank(r.Dst) == rank(s) && r.Dst != s) {
				t.Errorf("event %s goes backwards: %s -> %s", r.Event, s, r.Dst)
			}
			if r.Dir != "" && !stateOf(r.Dir, s) {
				t.Errorf("event %s: %s calls are never %s", r.Event, r.Dir, s)
			}
		}
	}
	// Every state is reachable and every live state can end.
	reach := map[calld.State]bool{calld.StateRequesting: true, calld.StateWaiting: true}
	for changed := true; changed; {
		changed = false
		for _, r := range Table() {
			for _, s := range r.Src {
				if reach[s] && !reach[r.Dst] {
					reach[r.Dst], changed = true, true
				}
			}
		}
	}
	for _, s := range States {
		if !reach[s] {
			t.Errorf("state %s unreachable", s)
		}
	}
}

// TestLooplabMatchesTable checks that looplab's own rendering of the
// machine has exactly the edges of Diagram: both come from the table.
func TestLooplabMatchesTable(t *testing.T) {
	got, err := Visualize(calld.StateRequesting)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Visualize(calld.StateRequesting)
	if got != again {
		t.Fatal("looplab's rendering is not deterministic")
	}
	edges := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			l = strings.TrimSpace(l)
			if strings.Contains(l, "-->") && !strings.Contains(l, "[*]") {
				out = append(out, l)
			}
		}
		slices.Sort(out)
		return out
	}
	if a, b := edges(got), edges(Diagram()); !reflect.DeepEqual(a, b) {
		t.Fatalf("looplab edges:\n%s\ntable edges:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

// row is one case of TestTransitions.
type row struct {
	name     string
	dir      calld.Direction
	from     calld.State
	pending  bool          // start requesting with a hang-up pending
	restored bool          // restore the machine from its JSON record first
	to       Timeouts      // timeouts of the machine
	after    time.Duration // how long after reaching from the input comes
	in       Input
	want     calld.State // state after
	event    string      // event fired ("" = none)
	actions  []Action
	ignored  bool
	err      string // calld error code
	check    func(t *testing.T, c calld.Call)
}

func endedBy(by calld.EndedBy, r calld.Reason) func(t *testing.T, c calld.Call) {
	return func(t *testing.T, c calld.Call) {
		t.Helper()
		if c.EndedBy != by || c.Reason != r {
			t.Errorf("ended_by %q reason %q, want %q %q", c.EndedBy, c.Reason, by, r)
		}
		if c.EndedAt == nil || c.Deadline != nil || c.DeadlineKind != "" {
			t.Errorf("ended_at %v deadline %v %q", c.EndedAt, c.Deadline, c.DeadlineKind)
		}
	}
}

func hangingUp(by calld.EndedBy) func(t *testing.T, c calld.Call) {
	return func(t *testing.T, c calld.Call) {
		t.Helper()
		if c.PendingEndedBy != by || c.Deadline != nil {
			t.Errorf("pending_ended_by %q deadline %v, want %q nil", c.PendingEndedBy, c.Deadline, by)
		}
	}
}

func deadline(k TimerKind) func(t *testing.T, c calld.Call) {
	return func(t *testing.T, c calld.Call) {
		t.Helper()
		if TimerKind(c.DeadlineKind) != k || c.Deadline == nil {
			t.Fatalf("deadline %v %q, want %s", c.Deadline, c.DeadlineKind, k)
		}
	}
}

func rows() []row {
	out, in := calld.DirectionOutgoing, calld.DirectionIncoming
	disc := func(r calld.Reason, dur int32, conn int64) []Action {
		return []Action{SendDiscard{Reason: r, Duration: dur, ConnectionID: conn}}
	}
	mx := Timeouts{MaxDuration: time.Hour}
	return []row{
		// Outgoing, requesting.
		{name: "requesting/waiting", dir: out, from: calld.StateRequesting, in: Remote{Call: waitingPC(out, false), FromRPC: true},
			want: calld.StateWaiting, event: EvRequestSent, check: func(t *testing.T, c calld.Call) {
				if c.ID != callID || c.AccessHash != hash || c.AdminID != selfID || c.Date == 0 {
					t.Errorf("not learnt: %+v", c)
				}
				deadline(TimerReceive)(t, c)
			}},
		{name: "requesting/waiting_received", dir: out, from: calld.StateRequesting, in: remote(waitingPC(out, true)),
			want: calld.StateRinging, event: EvDelivered, check: deadline(TimerRing)},
		{name: "requesting/accepted_early", dir: out, from: calld.StateRequesting, in: remote(acceptedPC(out)),
			want: calld.StateExchangingKeys, event: EvPeerAccepted, actions: []Action{SendConfirm{}}},
		{name: "requesting/discard", dir: out, from: calld.StateRequesting, in: Local{Action: Discard},
			want: calld.StateRequesting, event: EvDeferHangup, check: func(t *testing.T, c calld.Call) {
				if !c.HangupPending || c.Reason != calld.ReasonMissed || c.PendingEndedBy != calld.EndedByLocal {
					t.Errorf("pending %+v", c)
				}
				deadline(TimerHangup)(t, c)
			}},
		{name: "requesting/fail", dir: out, from: calld.StateRequesting, in: Local{Action: Fail, Message: "dh"},
			want: calld.StateRequesting, event: EvDeferHangup, check: func(t *testing.T, c calld.Call) {
				if c.Reason != calld.ReasonDisconnect || c.PendingEndedBy != calld.EndedByError || c.Error != "dh" {
					t.Errorf("pending %+v", c)
				}
			}},
		{name: "requesting/receive_timer", dir: out, from: calld.StateRequesting, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: calld.StateRequesting, event: EvDeferHangup, check: func(t *testing.T, c calld.Call) {
				if c.Reason != calld.ReasonMissed || c.PendingEndedBy != calld.EndedByTimeout {
					t.Errorf("pending %+v", c)
				}
			}},
		{name: "requesting/receive_timer_early", dir: out, from: calld.StateRequesting, in: Timer{Kind: TimerReceive},
			want: calld.StateRequesting, ignored: true},
		{name: "requesting/ring_timer_not_running", dir: out, from: calld.StateRequesting, after: time.Hour, in: Timer{Kind: TimerRing},
			want: calld.StateRequesting, ignored: true},
		{name: "requesting+pending/waiting", dir: out, from: calld.StateRequesting, pending: true, in: remote(waitingPC(out, false)),
			want: calld.StateHangingUp, event: EvDeferredDiscard, actions: disc(calld.ReasonMissed, 0, 0), check: hangingUp(calld.EndedByLocal)},
		{name: "requesting+pending/accepted", dir: out, from: calld.StateRequesting, pending: true, in: remote(acceptedPC(out)),
			want: calld.StateHangingUp, event: EvDeferredDiscard, actions: disc(calld.ReasonMissed, 0, 0)},
		{name: "requesting+pending/discard_again", dir: out, from: calld.StateRequesting, pending: true, in: Local{Action: Discard},
			want: calld.StateRequesting, err: calld.ECONFLICT},
		{name: "requesting+pending/fail", dir: out, from: calld.StateRequesting, pending: true, in: Local{Action: Fail},
			want: calld.StateRequesting, ignored: true},
		{name: "requesting+pending/hangup_timer", dir: out, from: calld.StateRequesting, pending: true, after: DefaultHangup, in: Timer{Kind: TimerHangup},
			want: calld.StateEnded, event: EvHangupExpired, check: endedBy(calld.EndedByLocal, calld.ReasonMissed)},
		{name: "requesting+pending/request_error", dir: out, from: calld.StateRequesting, pending: true, in: RPCResult{Method: MethodRequest, Err: errPlain},
			want: calld.StateEnded, event: EvAborted, check: endedBy(calld.EndedByError, calld.ReasonMissed)},
		{name: "requesting/discarded", dir: out, from: calld.StateRequesting, in: remote(discardedPC(&tg.PhoneCallDiscardReasonBusy{}, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByRemote, calld.ReasonBusy)},
		{name: "requesting/empty", dir: out, from: calld.StateRequesting, in: remote(&tg.PhoneCallEmpty{ID: callID}),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByRemote, calld.ReasonNone)},
		{name: "requesting/request_error", dir: out, from: calld.StateRequesting, in: RPCResult{Method: MethodRequest, Err: rpcErr(400, "USER_PRIVACY_RESTRICTED")},
			want: calld.StateEnded, event: EvAborted, check: func(t *testing.T, c calld.Call) {
				endedBy(calld.EndedByError, calld.ReasonNone)(t, c)
				if !strings.Contains(c.Error, "USER_PRIVACY_RESTRICTED") {
					t.Errorf("error %q", c.Error)
				}
			}},
		{name: "requesting/request_ok", dir: out, from: calld.StateRequesting, in: RPCResult{Method: MethodRequest},
			want: calld.StateRequesting, ignored: true},
		{name: "requesting/phone_call", dir: out, from: calld.StateRequesting, in: remote(phoneCallPC(out)), want: calld.StateRequesting, ignored: true},
		{name: "requesting/requested", dir: out, from: calld.StateRequesting, in: remote(requested(false)), want: calld.StateRequesting, ignored: true},
		{name: "requesting/wrong_participant", dir: out, from: calld.StateRequesting,
			in:   remote(&tg.PhoneCallWaiting{ID: callID, AccessHash: hash, AdminID: selfID, ParticipantID: 999}),
			want: calld.StateRequesting, ignored: true},
		{name: "requesting/accept", dir: out, from: calld.StateRequesting, in: Local{Action: Accept}, want: calld.StateRequesting, err: calld.EINVALID},
		{name: "requesting/decline", dir: out, from: calld.StateRequesting, in: Local{Action: Decline}, want: calld.StateRequesting, err: calld.EINVALID},
		{name: "requesting/acknowledge", dir: out, from: calld.StateRequesting, in: Local{Action: Acknowledge}, want: calld.StateRequesting, ignored: true},
		{name: "requesting/bad_reason", dir: out, from: calld.StateRequesting, in: Local{Action: Discard, Reason: "rude"}, want: calld.StateRequesting, err: calld.EINVALID},

		// Outgoing, waiting.
		{name: "waiting_out/received", dir: out, from: calld.StateWaiting, in: remote(waitingPC(out, true)),
			want: calld.StateRinging, event: EvDelivered, check: func(t *testing.T, c calld.Call) {
				if c.RingingAt == nil {
					t.Error("no ringing_at")
				}
				deadline(TimerRing)(t, c)
			}},
		{name: "waiting_out/duplicate_waiting", dir: out, from: calld.StateWaiting, in: remote(waitingPC(out, false)), want: calld.StateWaiting, ignored: true},
		{name: "waiting_out/accepted", dir: out, from: calld.StateWaiting, in: remote(acceptedPC(out)),
			want: calld.StateExchangingKeys, event: EvPeerAccepted, actions: []Action{SendConfirm{}}},
		{name: "waiting_out/phone_call", dir: out, from: calld.StateWaiting, in: remote(phoneCallPC(out)), want: calld.StateWaiting, ignored: true},
		{name: "waiting_out/other_call", dir: out, from: calld.StateWaiting,
			in: remote(&tg.PhoneCallWaiting{ID: otherID, AccessHash: 1, AdminID: selfID, ParticipantID: peerID}), want: calld.StateWaiting, ignored: true},
		{name: "waiting_out/discard", dir: out, from: calld.StateWaiting, in: Local{Action: Discard},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonMissed, 0, 0), check: hangingUp(calld.EndedByLocal)},
		{name: "waiting_out/discard_explicit", dir: out, from: calld.StateWaiting, in: Local{Action: Discard, Reason: calld.ReasonBusy},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonBusy, 0, 0)},
		{name: "waiting_out/receive_timer", dir: out, from: calld.StateWaiting, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonMissed, 0, 0), check: hangingUp(calld.EndedByTimeout)},
		{name: "waiting_out/discarded", dir: out, from: calld.StateWaiting, in: remote(discardedPC(nil, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByRemote, calld.ReasonNone)},
		{name: "waiting_out/acknowledge", dir: out, from: calld.StateWaiting, in: Local{Action: Acknowledge}, want: calld.StateWaiting, ignored: true},
		{name: "waiting_out/received_rpc", dir: out, from: calld.StateWaiting, in: RPCResult{Method: MethodReceived}, want: calld.StateWaiting, ignored: true},

		// Outgoing, ringing at the peer.
		{name: "ringing_out/accepted", dir: out, from: calld.StateRinging, in: remote(acceptedPC(out)),
			want: calld.StateExchangingKeys, event: EvPeerAccepted, actions: []Action{SendConfirm{}}, check: deadline(TimerReceive)},
		{name: "ringing_out/received_again", dir: out, from: calld.StateRinging, in: remote(waitingPC(out, true)), want: calld.StateRinging, ignored: true},
		{name: "ringing_out/ring_timer", dir: out, from: calld.StateRinging, after: DefaultRing, in: Timer{Kind: TimerRing},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonMissed, 0, 0), check: hangingUp(calld.EndedByTimeout)},
		{name: "ringing_out/accept", dir: out, from: calld.StateRinging, in: Local{Action: Accept}, want: calld.StateRinging, err: calld.EINVALID},
		{name: "ringing_out/discard", dir: out, from: calld.StateRinging, in: Local{Action: Discard},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonMissed, 0, 0)},
		{name: "ringing_out/busy", dir: out, from: calld.StateRinging, in: remote(discardedPC(&tg.PhoneCallDiscardReasonBusy{}, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByRemote, calld.ReasonBusy)},

		// Outgoing, exchanging keys.
		{name: "keys_out/confirm_sent", dir: out, from: calld.StateExchangingKeys, after: 5 * time.Second, in: Local{Action: Confirm},
			want: calld.StateExchangingKeys, event: EvConfirmSent, check: deadline(TimerReceive)},
		{name: "keys_out/phone_call", dir: out, from: calld.StateExchangingKeys, in: remote(phoneCallPC(out)),
			want: calld.StateActive, event: EvConnected, check: func(t *testing.T, c calld.Call) {
				want := []calld.Connection{{ID: relayA, IP: "198.51.100.1", IPv6: "2001:db8::1", Port: 500}, {ID: relayB, IP: "198.51.100.2", Port: 3478}}
				if !reflect.DeepEqual(c.Connections, want) || c.ActiveAt == nil || c.Deadline != nil {
					t.Errorf("connections %+v active_at %v deadline %v", c.Connections, c.ActiveAt, c.Deadline)
				}
			}},
		{name: "keys_out/phone_call_max_duration", dir: out, from: calld.StateExchangingKeys, to: mx, in: remote(phoneCallPC(out)),
			want: calld.StateActive, event: EvConnected, check: deadline(TimerMaxDuration)},
		{name: "keys_out/accepted_again", dir: out, from: calld.StateExchangingKeys, in: remote(acceptedPC(out)), want: calld.StateExchangingKeys, ignored: true},
		{name: "keys_out/confirm_ok", dir: out, from: calld.StateExchangingKeys, in: RPCResult{Method: MethodConfirm}, want: calld.StateExchangingKeys},
		{name: "keys_out/confirm_declined", dir: out, from: calld.StateExchangingKeys, in: RPCResult{Method: MethodConfirm, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: calld.StateEnded, event: EvAborted, check: endedBy(calld.EndedByRemote, calld.ReasonNone)},
		{name: "keys_out/confirm_error", dir: out, from: calld.StateExchangingKeys, in: RPCResult{Method: MethodConfirm, Err: rpcErr(400, "CALL_PEER_INVALID")},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 0, 0), check: hangingUp(calld.EndedByError)},
		{name: "keys_out/receive_timer", dir: out, from: calld.StateExchangingKeys, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 0, 0), check: hangingUp(calld.EndedByTimeout)},
		{name: "keys_out/fail", dir: out, from: calld.StateExchangingKeys, in: Local{Action: Fail, Message: "fingerprint"},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 0, 0), check: hangingUp(calld.EndedByError)},
		{name: "keys_out/discard", dir: out, from: calld.StateExchangingKeys, in: Local{Action: Discard},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonHangup, 0, 0)},
		{name: "keys_out/wrong_access_hash", dir: out, from: calld.StateExchangingKeys,
			in:   remote(&tg.PhoneCall{ID: callID, AccessHash: 1, AdminID: selfID, ParticipantID: peerID}),
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 0, 0), check: func(t *testing.T, c calld.Call) {
				hangingUp(calld.EndedByError)(t, c)
				if !strings.Contains(c.Error, "access_hash") {
					t.Errorf("error %q", c.Error)
				}
			}},

		// Active (outgoing path; the incoming path is the same machine).
		{name: "active/set_connection", dir: out, from: calld.StateActive, in: Local{Action: SetConnection, ConnectionID: relayB},
			want: calld.StateActive, event: EvSetConnection, check: func(t *testing.T, c calld.Call) {
				if c.ConnectionID != relayB {
					t.Errorf("connection_id %d", c.ConnectionID)
				}
			}},
		{name: "active/set_connection_unknown", dir: out, from: calld.StateActive, in: Local{Action: SetConnection, ConnectionID: 1}, want: calld.StateActive, err: calld.EINVALID},
		{name: "active/set_connection_zero", dir: out, from: calld.StateActive, in: Local{Action: SetConnection}, want: calld.StateActive, err: calld.EINVALID},
		{name: "active/phone_call_again", dir: out, from: calld.StateActive, in: remote(phoneCallPC(out)), want: calld.StateActive, ignored: true},
		{name: "active/wrong_admin", dir: out, from: calld.StateActive,
			in:   remote(&tg.PhoneCall{ID: callID, AccessHash: hash, AdminID: 5, ParticipantID: peerID}),
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 1, 0)},
		{name: "active/discard", dir: out, from: calld.StateActive, after: 61 * time.Second, in: Local{Action: Discard},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonHangup, 61, 0)},
		{name: "active/max_duration", dir: out, from: calld.StateActive, to: mx, after: time.Hour, in: Timer{Kind: TimerMaxDuration},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonHangup, 3600, 0), check: hangingUp(calld.EndedByTimeout)},
		{name: "active/discarded", dir: out, from: calld.StateActive, after: 10 * time.Second,
			in:   remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 99)),
			want: calld.StateEnded, event: EvDiscarded, check: func(t *testing.T, c calld.Call) {
				endedBy(calld.EndedByRemote, calld.ReasonHangup)(t, c)
				if c.Duration != 10 {
					t.Errorf("duration %d, want our own 10", c.Duration)
				}
			}},
		{name: "active/accept", dir: out, from: calld.StateActive, in: Local{Action: Accept}, want: calld.StateActive, err: calld.EINVALID},
		{name: "active/ring_timer", dir: out, from: calld.StateActive, after: time.Hour, in: Timer{Kind: TimerRing}, want: calld.StateActive, ignored: true},

		// Hanging up.
		{name: "hanging_up/resend", dir: out, from: calld.StateHangingUp, restored: true, in: Local{Action: Resend},
			want: calld.StateHangingUp, event: EvResend, actions: disc(calld.ReasonHangup, 1, 0)},
		{name: "hanging_up/resend_not_restored", dir: out, from: calld.StateHangingUp, in: Local{Action: Resend},
			want: calld.StateHangingUp, ignored: true},
		{name: "hanging_up/discard_timed_out", dir: out, from: calld.StateHangingUp,
			in:   RPCResult{Method: MethodDiscard, Err: errors.New("no answer in time"), TimedOut: true},
			want: calld.StateHangingUp, check: func(t *testing.T, c calld.Call) {
				if c.Reason != calld.ReasonHangup || c.EndedBy != "" || c.Error != "" {
					t.Errorf("timed-out discard recorded an answer: %+v", c)
				}
			}},
		{name: "hanging_up/discard", dir: out, from: calld.StateHangingUp, in: Local{Action: Discard}, want: calld.StateHangingUp, err: calld.ECONFLICT},
		{name: "hanging_up/decline", dir: in, from: calld.StateHangingUp, in: Local{Action: Decline}, want: calld.StateHangingUp, err: calld.ECONFLICT},
		{name: "hanging_up/fail", dir: out, from: calld.StateHangingUp, in: Local{Action: Fail}, want: calld.StateHangingUp, ignored: true},
		{name: "hanging_up/set_video", dir: out, from: calld.StateHangingUp, in: Local{Action: SetVideo, Video: true}, want: calld.StateHangingUp, err: calld.ECONFLICT},
		{name: "hanging_up/discard_ok", dir: out, from: calld.StateHangingUp, in: RPCResult{Method: MethodDiscard},
			want: calld.StateEnded, event: EvDiscardDone, check: endedBy(calld.EndedByLocal, calld.ReasonHangup)},
		{name: "hanging_up/already_accepted", dir: in, from: calld.StateHangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(400, "CALL_ALREADY_ACCEPTED")},
			want: calld.StateEnded, event: EvDiscardDone, check: endedBy(calld.EndedByOtherDevice, calld.ReasonHangup)},
		{name: "hanging_up/already_declined", dir: out, from: calld.StateHangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: calld.StateEnded, event: EvDiscardDone, check: endedBy(calld.EndedByLocal, calld.ReasonHangup)},
		{name: "hanging_up/peer_invalid", dir: out, from: calld.StateHangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(400, "CALL_PEER_INVALID")},
			want: calld.StateEnded, event: EvDiscardDone, check: func(t *testing.T, c calld.Call) {
				endedBy(calld.EndedByError, calld.ReasonHangup)(t, c)
				if !strings.Contains(c.Error, "CALL_PEER_INVALID") {
					t.Errorf("error %q", c.Error)
				}
			}},
		{name: "hanging_up/occupy_exhausted", dir: out, from: calld.StateHangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(500, "CALL_OCCUPY_FAILED")},
			want: calld.StateEnded, event: EvDiscardDone, check: endedBy(calld.EndedByError, calld.ReasonHangup)},
		{name: "hanging_up/discarded", dir: out, from: calld.StateHangingUp, in: remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByLocal, calld.ReasonHangup)},
		{name: "hanging_up/empty", dir: out, from: calld.StateHangingUp, in: remote(&tg.PhoneCallEmpty{ID: callID}),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByLocal, calld.ReasonHangup)},
		{name: "hanging_up/phone_call", dir: out, from: calld.StateHangingUp, in: remote(phoneCallPC(out)), want: calld.StateHangingUp, ignored: true},
		{name: "hanging_up/wrong_hash", dir: out, from: calld.StateHangingUp,
			in: remote(&tg.PhoneCall{ID: callID, AccessHash: 1, AdminID: selfID, ParticipantID: peerID}), want: calld.StateHangingUp, ignored: true},
		{name: "hanging_up/timer", dir: out, from: calld.StateHangingUp, after: time.Hour, in: Timer{Kind: TimerReceive}, want: calld.StateHangingUp, ignored: true},

		// Incoming, waiting for receivedCall.
		{name: "waiting_in/acknowledge", dir: in, from: calld.StateWaiting, in: Local{Action: Acknowledge},
			want: calld.StateRinging, event: EvAcknowledge, check: deadline(TimerRing)},
		{name: "waiting_in/received_ok", dir: in, from: calld.StateWaiting, in: RPCResult{Method: MethodReceived},
			want: calld.StateRinging, event: EvAcknowledge},
		{name: "waiting_in/received_declined", dir: in, from: calld.StateWaiting, in: RPCResult{Method: MethodReceived, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: calld.StateEnded, event: EvAborted, check: endedBy(calld.EndedByRemote, calld.ReasonMissed)},
		{name: "waiting_in/received_accepted", dir: in, from: calld.StateWaiting, in: RPCResult{Method: MethodReceived, Err: rpcErr(400, "CALL_ALREADY_ACCEPTED")},
			want: calld.StateEnded, event: EvAborted, check: endedBy(calld.EndedByOtherDevice, calld.ReasonNone)},
		{name: "waiting_in/received_error", dir: in, from: calld.StateWaiting, in: RPCResult{Method: MethodReceived, Err: errPlain},
			want: calld.StateEnded, event: EvAborted, check: endedBy(calld.EndedByError, calld.ReasonNone)},
		{name: "waiting_in/decline", dir: in, from: calld.StateWaiting, in: Local{Action: Decline, Reason: calld.ReasonBusy},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonBusy, 0, 0)},
		{name: "waiting_in/ring_timer", dir: in, from: calld.StateWaiting, after: DefaultRing, in: Timer{Kind: TimerRing},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonMissed, 0, 0), check: hangingUp(calld.EndedByTimeout)},
		{name: "waiting_in/accept", dir: in, from: calld.StateWaiting, in: Local{Action: Accept}, want: calld.StateWaiting, err: calld.ECONFLICT},
		{name: "waiting_in/requested_again", dir: in, from: calld.StateWaiting, in: remote(requested(false)), want: calld.StateWaiting, ignored: true},
		{name: "waiting_in/discarded_no_reason", dir: in, from: calld.StateWaiting, in: remote(discardedPC(nil, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByOtherDevice, calld.ReasonNone)},
		{name: "waiting_in/confirm", dir: in, from: calld.StateWaiting, in: Local{Action: Confirm}, want: calld.StateWaiting, ignored: true},

		// Incoming, ringing here.
		{name: "ringing_in/accept", dir: in, from: calld.StateRinging, in: Local{Action: Accept},
			want: calld.StateAccepting, event: EvAccept, actions: []Action{SendAccept{}}, check: deadline(TimerReceive)},
		{name: "ringing_in/acknowledge_again", dir: in, from: calld.StateRinging, in: Local{Action: Acknowledge}, want: calld.StateRinging, ignored: true},
		{name: "ringing_in/decline", dir: in, from: calld.StateRinging, in: Local{Action: Decline},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonBusy, 0, 0)},
		{name: "ringing_in/discard", dir: in, from: calld.StateRinging, in: Local{Action: Discard, Reason: calld.ReasonAuto},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonBusy, 0, 0)},
		{name: "ringing_in/waiting", dir: in, from: calld.StateRinging, in: remote(waitingPC(in, false)), want: calld.StateRinging, ignored: true},
		{name: "ringing_in/accepted", dir: in, from: calld.StateRinging, in: remote(acceptedPC(in)), want: calld.StateRinging, ignored: true},
		{name: "ringing_in/phone_call", dir: in, from: calld.StateRinging, in: remote(phoneCallPC(in)), want: calld.StateRinging, ignored: true},
		{name: "ringing_in/discarded_missed", dir: in, from: calld.StateRinging, in: remote(discardedPC(&tg.PhoneCallDiscardReasonMissed{}, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByRemote, calld.ReasonMissed)},
		{name: "ringing_in/discarded_fields_without_flags", dir: in, from: calld.StateRinging,
			in:   remote(&tg.PhoneCallDiscarded{ID: callID, Reason: &tg.PhoneCallDiscardReasonBusy{}, NeedDebug: true}),
			want: calld.StateEnded, event: EvDiscarded, check: func(t *testing.T, c calld.Call) {
				endedBy(calld.EndedByRemote, calld.ReasonBusy)(t, c)
				if !c.NeedDebug {
					t.Error("need_debug lost")
				}
			}},
		{name: "waiting_out/receive_date_field_without_flag", dir: out, from: calld.StateWaiting,
			in:   remote(&tg.PhoneCallWaiting{ID: callID, AccessHash: hash, AdminID: selfID, ParticipantID: peerID, ReceiveDate: 5}),
			want: calld.StateRinging, event: EvDelivered},
		{name: "ringing_in/wrong_participant", dir: in, from: calld.StateRinging,
			in:   remote(&tg.PhoneCallAccepted{ID: callID, AccessHash: hash, AdminID: peerID, ParticipantID: 1}),
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 0, 0), check: hangingUp(calld.EndedByError)},

		// Incoming, accepting.
		{name: "accepting/accept_ok", dir: in, from: calld.StateAccepting, in: RPCResult{Method: MethodAccept},
			want: calld.StateExchangingKeys, event: EvAcceptDone, check: deadline(TimerReceive)},
		{name: "accepting/waiting", dir: in, from: calld.StateAccepting, in: Remote{Call: waitingPC(in, false), FromRPC: true},
			want: calld.StateExchangingKeys, event: EvAcceptDone},
		{name: "accepting/accepted", dir: in, from: calld.StateAccepting, in: remote(acceptedPC(in)),
			want: calld.StateExchangingKeys, event: EvAcceptDone},
		{name: "accepting/phone_call", dir: in, from: calld.StateAccepting, in: remote(phoneCallPC(in)),
			want: calld.StateActive, event: EvConnected},
		{name: "accepting/accept_declined", dir: in, from: calld.StateAccepting, in: RPCResult{Method: MethodAccept, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: calld.StateEnded, event: EvAborted, check: endedBy(calld.EndedByRemote, calld.ReasonNone)},
		{name: "accepting/accept_accepted", dir: in, from: calld.StateAccepting, in: RPCResult{Method: MethodAccept, Err: rpcErr(400, "CALL_ALREADY_ACCEPTED")},
			want: calld.StateEnded, event: EvAborted, check: endedBy(calld.EndedByOtherDevice, calld.ReasonNone)},
		{name: "accepting/accept_error", dir: in, from: calld.StateAccepting, in: RPCResult{Method: MethodAccept, Err: errPlain},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 0, 0), check: hangingUp(calld.EndedByError)},
		{name: "accepting/discarded_no_reason", dir: in, from: calld.StateAccepting, in: remote(discardedPC(nil, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByOtherDevice, calld.ReasonNone)},
		{name: "accepting/accept_again", dir: in, from: calld.StateAccepting, in: Local{Action: Accept}, want: calld.StateAccepting, err: calld.ECONFLICT},
		{name: "accepting/decline", dir: in, from: calld.StateAccepting, in: Local{Action: Decline}, want: calld.StateAccepting, err: calld.ECONFLICT},
		{name: "accepting/discard", dir: in, from: calld.StateAccepting, in: Local{Action: Discard},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonHangup, 0, 0)},
		{name: "accepting/receive_timer", dir: in, from: calld.StateAccepting, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonDisconnect, 0, 0)},

		// Incoming, exchanging keys and active.
		{name: "keys_in/phone_call", dir: in, from: calld.StateExchangingKeys, in: remote(phoneCallPC(in)), want: calld.StateActive, event: EvConnected},
		{name: "keys_in/waiting_again", dir: in, from: calld.StateExchangingKeys, in: remote(waitingPC(in, false)), want: calld.StateExchangingKeys, ignored: true},
		{name: "keys_in/confirm", dir: in, from: calld.StateExchangingKeys, in: Local{Action: Confirm}, want: calld.StateExchangingKeys, ignored: true},
		{name: "keys_in/accept_result_late", dir: in, from: calld.StateExchangingKeys, in: RPCResult{Method: MethodAccept}, want: calld.StateExchangingKeys, ignored: true},
		{name: "keys_in/discarded_no_reason", dir: in, from: calld.StateExchangingKeys, in: remote(discardedPC(nil, 0)),
			want: calld.StateEnded, event: EvDiscarded, check: endedBy(calld.EndedByRemote, calld.ReasonNone)},
		{name: "active_in/discard", dir: in, from: calld.StateActive, after: 2500 * time.Millisecond, in: Local{Action: Discard},
			want: calld.StateHangingUp, event: EvDiscard, actions: disc(calld.ReasonHangup, 2, 0)},
		{name: "active_in/decline", dir: in, from: calld.StateActive, in: Local{Action: Decline}, want: calld.StateActive, err: calld.ECONFLICT},

		// Malformed inputs.
		{name: "nil_constructor", dir: out, from: calld.StateWaiting, in: Remote{}, want: calld.StateWaiting, ignored: true},
		{name: "typed_nil_constructor", dir: out, from: calld.StateWaiting, in: Remote{Call: (*tg.PhoneCall)(nil)}, want: calld.StateWaiting, ignored: true},
		{name: "unknown_local", dir: out, from: calld.StateWaiting, in: Local{Action: "dance"}, want: calld.StateWaiting, err: calld.EINVALID},
		{name: "unknown_method", dir: out, from: calld.StateWaiting, in: RPCResult{Method: "phone.x"}, want: calld.StateWaiting, ignored: true},
		{name: "nil_input", dir: out, from: calld.StateWaiting, in: nil, want: calld.StateWaiting, ignored: true},
	}
}

func TestTransitions(t *testing.T) {
	covered := map[[2]string]bool{}
	for _, tc := range rows() {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			var m *Machine
			if tc.pending {
				m = pending(t, clk, tc.to)
			} else {
				m = reach(t, tc.dir, tc.from, clk, tc.to)
			}
			if tc.restored {
				var err error
				if m, err = Restore(roundTrip(t, m.Call()), tc.to); err != nil {
					t.Fatal(err)
				}
			}
			before := m.Call()
			now := clk.Advance(tc.after)
			if tc.after == 0 {
				now = clk.Advance(time.Second)
			}
			st := m.Handle(tc.in, now)
			c := m.Call()
			if c.State != tc.want {
				t.Fatalf("state %s, want %s (step %+v)", c.State, tc.want, st)
			}
			if got := errCode(st.Err); got != tc.err {
				t.Fatalf("err %v (code %q), want code %q", st.Err, got, tc.err)
			}
			if (st.Ignored != "") != tc.ignored {
				t.Fatalf("ignored %q, want ignored=%v", st.Ignored, tc.ignored)
			}
			if tc.ignored || tc.err != "" || tc.event == "" {
				if !reflect.DeepEqual(before, c) || st.Changed || len(st.Actions) > 0 || len(st.Transitions) > 0 {
					t.Fatalf("input without effect changed something: %+v\nbefore %+v\nafter  %+v", st, before, c)
				}
				return
			}
			if m.last != tc.event {
				t.Fatalf("event %q, want %q", m.last, tc.event)
			}
			if before.State != c.State {
				want := []Transition{{From: before.State, To: c.State, Event: tc.event}}
				if c.State == calld.StateHangingUp || c.State == calld.StateEnded {
					want[0].Reason, want[0].Duration = c.Reason, c.Duration
				}
				if !reflect.DeepEqual(st.Transitions, want) {
					t.Fatalf("transitions %+v, want %+v", st.Transitions, want)
				}
			} else if len(st.Transitions) != 0 {
				t.Fatalf("self-transition journaled: %+v", st.Transitions)
			}
			if !reflect.DeepEqual(st.Actions, tc.actions) {
				t.Fatalf("actions %+v, want %+v", st.Actions, tc.actions)
			}
			if st.Changed == reflect.DeepEqual(before, c) {
				t.Fatalf("Changed %v, but record changed: %v", st.Changed, !reflect.DeepEqual(before, c))
			}
			if tc.check != nil {
				tc.check(t, c)
			}
			covered[[2]string{tc.event, string(before.State)}] = true
		})
	}
	for _, r := range Table() {
		for _, s := range r.Src {
			if !covered[[2]string{r.Event, string(s)}] {
				t.Errorf("table row %s from %s has no passing case", r.Event, s)
			}
		}
	}
}

// TestNothingLeavesEnded feeds every kind of input to ended calls of both
// directions: all are ignored (internal) or refused with conflict (local
// requests), and the record never changes.
func TestNothingLeavesEnded(t *testing.T) {
	for _, dir := range []calld.Direction{calld.DirectionIncoming, calld.DirectionOutgoing} {
		clk := newClock()
		m := reach(t, dir, calld.StateEnded, clk, Timeouts{})
		before := m.Call()
		for i, in := range catalog(dir) {
			st := m.Handle(in, clk.Advance(time.Hour))
			if st.Ignored == "" && st.Err == nil {
				t.Errorf("%s #%d %#v: neither ignored nor refused: %+v", dir, i, in, st)
			}
			if l, ok := in.(Local); ok && l.Action == Discard && errCode(st.Err) != calld.ECONFLICT {
				t.Errorf("%s: discard of an ended call: %v, want conflict", dir, st.Err)
			}
			if st.Changed || len(st.Actions) > 0 || len(st.Transitions) > 0 || !reflect.DeepEqual(before, m.Call()) {
				t.Fatalf("%s #%d %#v changed an ended call: %+v", dir, i, in, st)
			}
		}
	}
}

// catalog is every input kind, for a call of direction dir.
func catalog(dir calld.Direction) []Input {
	in := []Input{
		remote(&tg.PhoneCallEmpty{ID: callID}),
		remote(waitingPC(dir, false)),
		remote(waitingPC(dir, true)),
		remote(requested(true)),
		remote(acceptedPC(dir)),
		remote(phoneCallPC(dir)),
		remote(discardedPC(nil, 0)),
		remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 5)),
		Remote{Call: &tg.PhoneCallWaiting{ID: callID, AccessHash: 1, AdminID: 1, ParticipantID: 2}},
		remote(&tg.PhoneCallDiscarded{ID: otherID}),
		Timer{Kind: TimerReceive}, Timer{Kind: TimerRing}, Timer{Kind: TimerMaxDuration}, Timer{Kind: TimerHangup},
	}
	for _, a := range []LocalAction{Acknowledge, Accept, Confirm, Discard, Decline, Fail, SetConnection, SetVideo, Resend} {
		in = append(in, Local{Action: a, ConnectionID: relayA, Video: true})
	}
	for _, meth := range []Method{MethodReceived, MethodRequest, MethodAccept, MethodConfirm, MethodDiscard} {
		in = append(in, RPCResult{Method: meth}, RPCResult{Method: meth, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			RPCResult{Method: meth, Err: rpcErr(400, "CALL_ALREADY_ACCEPTED")}, RPCResult{Method: meth, Err: errPlain})
	}
	return in
}
