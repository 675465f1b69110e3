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
	dirs := map[string]Direction{}
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
			if s == Ended {
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
	reach := map[State]bool{Requesting: true, Waiting: true}
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
	got, err := Visualize(Requesting)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Visualize(Requesting)
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
	dir      Direction
	from     State
	pending  bool          // start requesting with a hang-up pending
	restored bool          // restore the machine from its JSON record first
	to       Timeouts      // timeouts of the machine
	after    time.Duration // how long after reaching from the input comes
	in       Input
	want     State  // state after
	event    string // event fired ("" = none)
	actions  []Action
	ignored  bool
	err      string // calld error code
	check    func(t *testing.T, c Call)
}

func endedBy(by EndedBy, r Reason) func(t *testing.T, c Call) {
	return func(t *testing.T, c Call) {
		t.Helper()
		if c.EndedBy != by || c.Reason != r {
			t.Errorf("ended_by %q reason %q, want %q %q", c.EndedBy, c.Reason, by, r)
		}
		if c.EndedAt == nil || c.Deadline != nil || c.DeadlineKind != "" {
			t.Errorf("ended_at %v deadline %v %q", c.EndedAt, c.Deadline, c.DeadlineKind)
		}
	}
}

func hangingUp(by EndedBy) func(t *testing.T, c Call) {
	return func(t *testing.T, c Call) {
		t.Helper()
		if c.PendingEndedBy != by || c.Deadline != nil {
			t.Errorf("pending_ended_by %q deadline %v, want %q nil", c.PendingEndedBy, c.Deadline, by)
		}
	}
}

func deadline(k TimerKind) func(t *testing.T, c Call) {
	return func(t *testing.T, c Call) {
		t.Helper()
		if TimerKind(c.DeadlineKind) != k || c.Deadline == nil {
			t.Fatalf("deadline %v %q, want %s", c.Deadline, c.DeadlineKind, k)
		}
	}
}

func rows() []row {
	out, in := Outgoing, Incoming
	disc := func(r Reason, dur int32, conn int64) []Action {
		return []Action{SendDiscard{Reason: r, Duration: dur, ConnectionID: conn}}
	}
	mx := Timeouts{MaxDuration: time.Hour}
	return []row{
		// Outgoing, requesting.
		{name: "requesting/waiting", dir: out, from: Requesting, in: Remote{Call: waitingPC(out, false), FromRPC: true},
			want: Waiting, event: EvRequestSent, check: func(t *testing.T, c Call) {
				if c.ID != callID || c.AccessHash != hash || c.AdminID != selfID || c.Date == 0 {
					t.Errorf("not learnt: %+v", c)
				}
				deadline(TimerReceive)(t, c)
			}},
		{name: "requesting/waiting_received", dir: out, from: Requesting, in: remote(waitingPC(out, true)),
			want: Ringing, event: EvDelivered, check: deadline(TimerRing)},
		{name: "requesting/accepted_early", dir: out, from: Requesting, in: remote(acceptedPC(out)),
			want: ExchangingKeys, event: EvPeerAccepted, actions: []Action{SendConfirm{}}},
		{name: "requesting/discard", dir: out, from: Requesting, in: Local{Action: Discard},
			want: Requesting, event: EvDeferHangup, check: func(t *testing.T, c Call) {
				if !c.HangupPending || c.Reason != ReasonMissed || c.PendingEndedBy != ByLocal {
					t.Errorf("pending %+v", c)
				}
				deadline(TimerHangup)(t, c)
			}},
		{name: "requesting/fail", dir: out, from: Requesting, in: Local{Action: Fail, Message: "dh"},
			want: Requesting, event: EvDeferHangup, check: func(t *testing.T, c Call) {
				if c.Reason != ReasonDisconnect || c.PendingEndedBy != ByError || c.Error != "dh" {
					t.Errorf("pending %+v", c)
				}
			}},
		{name: "requesting/receive_timer", dir: out, from: Requesting, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: Requesting, event: EvDeferHangup, check: func(t *testing.T, c Call) {
				if c.Reason != ReasonMissed || c.PendingEndedBy != ByTimeout {
					t.Errorf("pending %+v", c)
				}
			}},
		{name: "requesting/receive_timer_early", dir: out, from: Requesting, in: Timer{Kind: TimerReceive},
			want: Requesting, ignored: true},
		{name: "requesting/ring_timer_not_running", dir: out, from: Requesting, after: time.Hour, in: Timer{Kind: TimerRing},
			want: Requesting, ignored: true},
		{name: "requesting+pending/waiting", dir: out, from: Requesting, pending: true, in: remote(waitingPC(out, false)),
			want: HangingUp, event: EvDeferredDiscard, actions: disc(ReasonMissed, 0, 0), check: hangingUp(ByLocal)},
		{name: "requesting+pending/accepted", dir: out, from: Requesting, pending: true, in: remote(acceptedPC(out)),
			want: HangingUp, event: EvDeferredDiscard, actions: disc(ReasonMissed, 0, 0)},
		{name: "requesting+pending/discard_again", dir: out, from: Requesting, pending: true, in: Local{Action: Discard},
			want: Requesting, err: calld.ECONFLICT},
		{name: "requesting+pending/fail", dir: out, from: Requesting, pending: true, in: Local{Action: Fail},
			want: Requesting, ignored: true},
		{name: "requesting+pending/hangup_timer", dir: out, from: Requesting, pending: true, after: DefaultHangup, in: Timer{Kind: TimerHangup},
			want: Ended, event: EvHangupExpired, check: endedBy(ByLocal, ReasonMissed)},
		{name: "requesting+pending/request_error", dir: out, from: Requesting, pending: true, in: RPCResult{Method: MethodRequest, Err: errPlain},
			want: Ended, event: EvAborted, check: endedBy(ByError, ReasonMissed)},
		{name: "requesting/discarded", dir: out, from: Requesting, in: remote(discardedPC(&tg.PhoneCallDiscardReasonBusy{}, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByRemote, ReasonBusy)},
		{name: "requesting/empty", dir: out, from: Requesting, in: remote(&tg.PhoneCallEmpty{ID: callID}),
			want: Ended, event: EvDiscarded, check: endedBy(ByRemote, ReasonNone)},
		{name: "requesting/request_error", dir: out, from: Requesting, in: RPCResult{Method: MethodRequest, Err: rpcErr(400, "USER_PRIVACY_RESTRICTED")},
			want: Ended, event: EvAborted, check: func(t *testing.T, c Call) {
				endedBy(ByError, ReasonNone)(t, c)
				if !strings.Contains(c.Error, "USER_PRIVACY_RESTRICTED") {
					t.Errorf("error %q", c.Error)
				}
			}},
		{name: "requesting/request_ok", dir: out, from: Requesting, in: RPCResult{Method: MethodRequest},
			want: Requesting, ignored: true},
		{name: "requesting/phone_call", dir: out, from: Requesting, in: remote(phoneCallPC(out)), want: Requesting, ignored: true},
		{name: "requesting/requested", dir: out, from: Requesting, in: remote(requested(false)), want: Requesting, ignored: true},
		{name: "requesting/wrong_participant", dir: out, from: Requesting,
			in:   remote(&tg.PhoneCallWaiting{ID: callID, AccessHash: hash, AdminID: selfID, ParticipantID: 999}),
			want: Requesting, ignored: true},
		{name: "requesting/accept", dir: out, from: Requesting, in: Local{Action: Accept}, want: Requesting, err: calld.EINVALID},
		{name: "requesting/decline", dir: out, from: Requesting, in: Local{Action: Decline}, want: Requesting, err: calld.EINVALID},
		{name: "requesting/acknowledge", dir: out, from: Requesting, in: Local{Action: Acknowledge}, want: Requesting, ignored: true},
		{name: "requesting/bad_reason", dir: out, from: Requesting, in: Local{Action: Discard, Reason: "rude"}, want: Requesting, err: calld.EINVALID},

		// Outgoing, waiting.
		{name: "waiting_out/received", dir: out, from: Waiting, in: remote(waitingPC(out, true)),
			want: Ringing, event: EvDelivered, check: func(t *testing.T, c Call) {
				if c.RingingAt == nil {
					t.Error("no ringing_at")
				}
				deadline(TimerRing)(t, c)
			}},
		{name: "waiting_out/duplicate_waiting", dir: out, from: Waiting, in: remote(waitingPC(out, false)), want: Waiting, ignored: true},
		{name: "waiting_out/accepted", dir: out, from: Waiting, in: remote(acceptedPC(out)),
			want: ExchangingKeys, event: EvPeerAccepted, actions: []Action{SendConfirm{}}},
		{name: "waiting_out/phone_call", dir: out, from: Waiting, in: remote(phoneCallPC(out)), want: Waiting, ignored: true},
		{name: "waiting_out/other_call", dir: out, from: Waiting,
			in: remote(&tg.PhoneCallWaiting{ID: otherID, AccessHash: 1, AdminID: selfID, ParticipantID: peerID}), want: Waiting, ignored: true},
		{name: "waiting_out/discard", dir: out, from: Waiting, in: Local{Action: Discard},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonMissed, 0, 0), check: hangingUp(ByLocal)},
		{name: "waiting_out/discard_explicit", dir: out, from: Waiting, in: Local{Action: Discard, Reason: ReasonBusy},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonBusy, 0, 0)},
		{name: "waiting_out/receive_timer", dir: out, from: Waiting, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonMissed, 0, 0), check: hangingUp(ByTimeout)},
		{name: "waiting_out/discarded", dir: out, from: Waiting, in: remote(discardedPC(nil, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByRemote, ReasonNone)},
		{name: "waiting_out/acknowledge", dir: out, from: Waiting, in: Local{Action: Acknowledge}, want: Waiting, ignored: true},
		{name: "waiting_out/received_rpc", dir: out, from: Waiting, in: RPCResult{Method: MethodReceived}, want: Waiting, ignored: true},

		// Outgoing, ringing at the peer.
		{name: "ringing_out/accepted", dir: out, from: Ringing, in: remote(acceptedPC(out)),
			want: ExchangingKeys, event: EvPeerAccepted, actions: []Action{SendConfirm{}}, check: deadline(TimerReceive)},
		{name: "ringing_out/received_again", dir: out, from: Ringing, in: remote(waitingPC(out, true)), want: Ringing, ignored: true},
		{name: "ringing_out/ring_timer", dir: out, from: Ringing, after: DefaultRing, in: Timer{Kind: TimerRing},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonMissed, 0, 0), check: hangingUp(ByTimeout)},
		{name: "ringing_out/accept", dir: out, from: Ringing, in: Local{Action: Accept}, want: Ringing, err: calld.EINVALID},
		{name: "ringing_out/discard", dir: out, from: Ringing, in: Local{Action: Discard},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonMissed, 0, 0)},
		{name: "ringing_out/busy", dir: out, from: Ringing, in: remote(discardedPC(&tg.PhoneCallDiscardReasonBusy{}, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByRemote, ReasonBusy)},

		// Outgoing, exchanging keys.
		{name: "keys_out/confirm_sent", dir: out, from: ExchangingKeys, after: 5 * time.Second, in: Local{Action: Confirm},
			want: ExchangingKeys, event: EvConfirmSent, check: deadline(TimerReceive)},
		{name: "keys_out/phone_call", dir: out, from: ExchangingKeys, in: remote(phoneCallPC(out)),
			want: Active, event: EvConnected, check: func(t *testing.T, c Call) {
				want := []Connection{{ID: relayA, IP: "198.51.100.1", IPv6: "2001:db8::1", Port: 500}, {ID: relayB, IP: "198.51.100.2", Port: 3478}}
				if !reflect.DeepEqual(c.Connections, want) || c.ActiveAt == nil || c.Deadline != nil {
					t.Errorf("connections %+v active_at %v deadline %v", c.Connections, c.ActiveAt, c.Deadline)
				}
			}},
		{name: "keys_out/phone_call_max_duration", dir: out, from: ExchangingKeys, to: mx, in: remote(phoneCallPC(out)),
			want: Active, event: EvConnected, check: deadline(TimerMaxDuration)},
		{name: "keys_out/accepted_again", dir: out, from: ExchangingKeys, in: remote(acceptedPC(out)), want: ExchangingKeys, ignored: true},
		{name: "keys_out/confirm_ok", dir: out, from: ExchangingKeys, in: RPCResult{Method: MethodConfirm}, want: ExchangingKeys},
		{name: "keys_out/confirm_declined", dir: out, from: ExchangingKeys, in: RPCResult{Method: MethodConfirm, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: Ended, event: EvAborted, check: endedBy(ByRemote, ReasonNone)},
		{name: "keys_out/confirm_error", dir: out, from: ExchangingKeys, in: RPCResult{Method: MethodConfirm, Err: rpcErr(400, "CALL_PEER_INVALID")},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 0, 0), check: hangingUp(ByError)},
		{name: "keys_out/receive_timer", dir: out, from: ExchangingKeys, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 0, 0), check: hangingUp(ByTimeout)},
		{name: "keys_out/fail", dir: out, from: ExchangingKeys, in: Local{Action: Fail, Message: "fingerprint"},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 0, 0), check: hangingUp(ByError)},
		{name: "keys_out/discard", dir: out, from: ExchangingKeys, in: Local{Action: Discard},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonHangup, 0, 0)},
		{name: "keys_out/wrong_access_hash", dir: out, from: ExchangingKeys,
			in:   remote(&tg.PhoneCall{ID: callID, AccessHash: 1, AdminID: selfID, ParticipantID: peerID}),
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 0, 0), check: func(t *testing.T, c Call) {
				hangingUp(ByError)(t, c)
				if !strings.Contains(c.Error, "access_hash") {
					t.Errorf("error %q", c.Error)
				}
			}},

		// Active (outgoing path; the incoming path is the same machine).
		{name: "active/set_connection", dir: out, from: Active, in: Local{Action: SetConnection, ConnectionID: relayB},
			want: Active, event: EvSetConnection, check: func(t *testing.T, c Call) {
				if c.ConnectionID != relayB {
					t.Errorf("connection_id %d", c.ConnectionID)
				}
			}},
		{name: "active/set_connection_unknown", dir: out, from: Active, in: Local{Action: SetConnection, ConnectionID: 1}, want: Active, err: calld.EINVALID},
		{name: "active/set_connection_zero", dir: out, from: Active, in: Local{Action: SetConnection}, want: Active, err: calld.EINVALID},
		{name: "active/phone_call_again", dir: out, from: Active, in: remote(phoneCallPC(out)), want: Active, ignored: true},
		{name: "active/wrong_admin", dir: out, from: Active,
			in:   remote(&tg.PhoneCall{ID: callID, AccessHash: hash, AdminID: 5, ParticipantID: peerID}),
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 1, 0)},
		{name: "active/discard", dir: out, from: Active, after: 61 * time.Second, in: Local{Action: Discard},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonHangup, 61, 0)},
		{name: "active/max_duration", dir: out, from: Active, to: mx, after: time.Hour, in: Timer{Kind: TimerMaxDuration},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonHangup, 3600, 0), check: hangingUp(ByTimeout)},
		{name: "active/discarded", dir: out, from: Active, after: 10 * time.Second,
			in:   remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 99)),
			want: Ended, event: EvDiscarded, check: func(t *testing.T, c Call) {
				endedBy(ByRemote, ReasonHangup)(t, c)
				if c.Duration != 10 {
					t.Errorf("duration %d, want our own 10", c.Duration)
				}
			}},
		{name: "active/accept", dir: out, from: Active, in: Local{Action: Accept}, want: Active, err: calld.EINVALID},
		{name: "active/ring_timer", dir: out, from: Active, after: time.Hour, in: Timer{Kind: TimerRing}, want: Active, ignored: true},

		// Hanging up.
		{name: "hanging_up/resend", dir: out, from: HangingUp, restored: true, in: Local{Action: Resend},
			want: HangingUp, event: EvResend, actions: disc(ReasonHangup, 1, 0)},
		{name: "hanging_up/resend_not_restored", dir: out, from: HangingUp, in: Local{Action: Resend},
			want: HangingUp, ignored: true},
		{name: "hanging_up/discard_timed_out", dir: out, from: HangingUp,
			in:   RPCResult{Method: MethodDiscard, Err: errors.New("no answer in time"), TimedOut: true},
			want: HangingUp, check: func(t *testing.T, c Call) {
				if c.Reason != ReasonHangup || c.EndedBy != "" || c.Error != "" {
					t.Errorf("timed-out discard recorded an answer: %+v", c)
				}
			}},
		{name: "hanging_up/discard", dir: out, from: HangingUp, in: Local{Action: Discard}, want: HangingUp, err: calld.ECONFLICT},
		{name: "hanging_up/decline", dir: in, from: HangingUp, in: Local{Action: Decline}, want: HangingUp, err: calld.ECONFLICT},
		{name: "hanging_up/fail", dir: out, from: HangingUp, in: Local{Action: Fail}, want: HangingUp, ignored: true},
		{name: "hanging_up/set_video", dir: out, from: HangingUp, in: Local{Action: SetVideo, Video: true}, want: HangingUp, err: calld.ECONFLICT},
		{name: "hanging_up/discard_ok", dir: out, from: HangingUp, in: RPCResult{Method: MethodDiscard},
			want: Ended, event: EvDiscardDone, check: endedBy(ByLocal, ReasonHangup)},
		{name: "hanging_up/already_accepted", dir: in, from: HangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(400, "CALL_ALREADY_ACCEPTED")},
			want: Ended, event: EvDiscardDone, check: endedBy(ByOtherDevice, ReasonHangup)},
		{name: "hanging_up/already_declined", dir: out, from: HangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: Ended, event: EvDiscardDone, check: endedBy(ByLocal, ReasonHangup)},
		{name: "hanging_up/peer_invalid", dir: out, from: HangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(400, "CALL_PEER_INVALID")},
			want: Ended, event: EvDiscardDone, check: func(t *testing.T, c Call) {
				endedBy(ByError, ReasonHangup)(t, c)
				if !strings.Contains(c.Error, "CALL_PEER_INVALID") {
					t.Errorf("error %q", c.Error)
				}
			}},
		{name: "hanging_up/occupy_exhausted", dir: out, from: HangingUp, in: RPCResult{Method: MethodDiscard, Err: rpcErr(500, "CALL_OCCUPY_FAILED")},
			want: Ended, event: EvDiscardDone, check: endedBy(ByError, ReasonHangup)},
		{name: "hanging_up/discarded", dir: out, from: HangingUp, in: remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByLocal, ReasonHangup)},
		{name: "hanging_up/empty", dir: out, from: HangingUp, in: remote(&tg.PhoneCallEmpty{ID: callID}),
			want: Ended, event: EvDiscarded, check: endedBy(ByLocal, ReasonHangup)},
		{name: "hanging_up/phone_call", dir: out, from: HangingUp, in: remote(phoneCallPC(out)), want: HangingUp, ignored: true},
		{name: "hanging_up/wrong_hash", dir: out, from: HangingUp,
			in: remote(&tg.PhoneCall{ID: callID, AccessHash: 1, AdminID: selfID, ParticipantID: peerID}), want: HangingUp, ignored: true},
		{name: "hanging_up/timer", dir: out, from: HangingUp, after: time.Hour, in: Timer{Kind: TimerReceive}, want: HangingUp, ignored: true},

		// Incoming, waiting for receivedCall.
		{name: "waiting_in/acknowledge", dir: in, from: Waiting, in: Local{Action: Acknowledge},
			want: Ringing, event: EvAcknowledge, check: deadline(TimerRing)},
		{name: "waiting_in/received_ok", dir: in, from: Waiting, in: RPCResult{Method: MethodReceived},
			want: Ringing, event: EvAcknowledge},
		{name: "waiting_in/received_declined", dir: in, from: Waiting, in: RPCResult{Method: MethodReceived, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: Ended, event: EvAborted, check: endedBy(ByRemote, ReasonMissed)},
		{name: "waiting_in/received_accepted", dir: in, from: Waiting, in: RPCResult{Method: MethodReceived, Err: rpcErr(400, "CALL_ALREADY_ACCEPTED")},
			want: Ended, event: EvAborted, check: endedBy(ByOtherDevice, ReasonNone)},
		{name: "waiting_in/received_error", dir: in, from: Waiting, in: RPCResult{Method: MethodReceived, Err: errPlain},
			want: Ended, event: EvAborted, check: endedBy(ByError, ReasonNone)},
		{name: "waiting_in/decline", dir: in, from: Waiting, in: Local{Action: Decline, Reason: ReasonBusy},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonBusy, 0, 0)},
		{name: "waiting_in/ring_timer", dir: in, from: Waiting, after: DefaultRing, in: Timer{Kind: TimerRing},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonMissed, 0, 0), check: hangingUp(ByTimeout)},
		{name: "waiting_in/accept", dir: in, from: Waiting, in: Local{Action: Accept}, want: Waiting, err: calld.ECONFLICT},
		{name: "waiting_in/requested_again", dir: in, from: Waiting, in: remote(requested(false)), want: Waiting, ignored: true},
		{name: "waiting_in/discarded_no_reason", dir: in, from: Waiting, in: remote(discardedPC(nil, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByOtherDevice, ReasonNone)},
		{name: "waiting_in/confirm", dir: in, from: Waiting, in: Local{Action: Confirm}, want: Waiting, ignored: true},

		// Incoming, ringing here.
		{name: "ringing_in/accept", dir: in, from: Ringing, in: Local{Action: Accept},
			want: Accepting, event: EvAccept, actions: []Action{SendAccept{}}, check: deadline(TimerReceive)},
		{name: "ringing_in/acknowledge_again", dir: in, from: Ringing, in: Local{Action: Acknowledge}, want: Ringing, ignored: true},
		{name: "ringing_in/decline", dir: in, from: Ringing, in: Local{Action: Decline},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonBusy, 0, 0)},
		{name: "ringing_in/discard", dir: in, from: Ringing, in: Local{Action: Discard, Reason: ReasonAuto},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonBusy, 0, 0)},
		{name: "ringing_in/waiting", dir: in, from: Ringing, in: remote(waitingPC(in, false)), want: Ringing, ignored: true},
		{name: "ringing_in/accepted", dir: in, from: Ringing, in: remote(acceptedPC(in)), want: Ringing, ignored: true},
		{name: "ringing_in/phone_call", dir: in, from: Ringing, in: remote(phoneCallPC(in)), want: Ringing, ignored: true},
		{name: "ringing_in/discarded_missed", dir: in, from: Ringing, in: remote(discardedPC(&tg.PhoneCallDiscardReasonMissed{}, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByRemote, ReasonMissed)},
		{name: "ringing_in/discarded_fields_without_flags", dir: in, from: Ringing,
			in:   remote(&tg.PhoneCallDiscarded{ID: callID, Reason: &tg.PhoneCallDiscardReasonBusy{}, NeedDebug: true}),
			want: Ended, event: EvDiscarded, check: func(t *testing.T, c Call) {
				endedBy(ByRemote, ReasonBusy)(t, c)
				if !c.NeedDebug {
					t.Error("need_debug lost")
				}
			}},
		{name: "waiting_out/receive_date_field_without_flag", dir: out, from: Waiting,
			in:   remote(&tg.PhoneCallWaiting{ID: callID, AccessHash: hash, AdminID: selfID, ParticipantID: peerID, ReceiveDate: 5}),
			want: Ringing, event: EvDelivered},
		{name: "ringing_in/wrong_participant", dir: in, from: Ringing,
			in:   remote(&tg.PhoneCallAccepted{ID: callID, AccessHash: hash, AdminID: peerID, ParticipantID: 1}),
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 0, 0), check: hangingUp(ByError)},

		// Incoming, accepting.
		{name: "accepting/accept_ok", dir: in, from: Accepting, in: RPCResult{Method: MethodAccept},
			want: ExchangingKeys, event: EvAcceptDone, check: deadline(TimerReceive)},
		{name: "accepting/waiting", dir: in, from: Accepting, in: Remote{Call: waitingPC(in, false), FromRPC: true},
			want: ExchangingKeys, event: EvAcceptDone},
		{name: "accepting/accepted", dir: in, from: Accepting, in: remote(acceptedPC(in)),
			want: ExchangingKeys, event: EvAcceptDone},
		{name: "accepting/phone_call", dir: in, from: Accepting, in: remote(phoneCallPC(in)),
			want: Active, event: EvConnected},
		{name: "accepting/accept_declined", dir: in, from: Accepting, in: RPCResult{Method: MethodAccept, Err: rpcErr(400, "CALL_ALREADY_DECLINED")},
			want: Ended, event: EvAborted, check: endedBy(ByRemote, ReasonNone)},
		{name: "accepting/accept_accepted", dir: in, from: Accepting, in: RPCResult{Method: MethodAccept, Err: rpcErr(400, "CALL_ALREADY_ACCEPTED")},
			want: Ended, event: EvAborted, check: endedBy(ByOtherDevice, ReasonNone)},
		{name: "accepting/accept_error", dir: in, from: Accepting, in: RPCResult{Method: MethodAccept, Err: errPlain},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 0, 0), check: hangingUp(ByError)},
		{name: "accepting/discarded_no_reason", dir: in, from: Accepting, in: remote(discardedPC(nil, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByOtherDevice, ReasonNone)},
		{name: "accepting/accept_again", dir: in, from: Accepting, in: Local{Action: Accept}, want: Accepting, err: calld.ECONFLICT},
		{name: "accepting/decline", dir: in, from: Accepting, in: Local{Action: Decline}, want: Accepting, err: calld.ECONFLICT},
		{name: "accepting/discard", dir: in, from: Accepting, in: Local{Action: Discard},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonHangup, 0, 0)},
		{name: "accepting/receive_timer", dir: in, from: Accepting, after: DefaultReceive, in: Timer{Kind: TimerReceive},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonDisconnect, 0, 0)},

		// Incoming, exchanging keys and active.
		{name: "keys_in/phone_call", dir: in, from: ExchangingKeys, in: remote(phoneCallPC(in)), want: Active, event: EvConnected},
		{name: "keys_in/waiting_again", dir: in, from: ExchangingKeys, in: remote(waitingPC(in, false)), want: ExchangingKeys, ignored: true},
		{name: "keys_in/confirm", dir: in, from: ExchangingKeys, in: Local{Action: Confirm}, want: ExchangingKeys, ignored: true},
		{name: "keys_in/accept_result_late", dir: in, from: ExchangingKeys, in: RPCResult{Method: MethodAccept}, want: ExchangingKeys, ignored: true},
		{name: "keys_in/discarded_no_reason", dir: in, from: ExchangingKeys, in: remote(discardedPC(nil, 0)),
			want: Ended, event: EvDiscarded, check: endedBy(ByRemote, ReasonNone)},
		{name: "active_in/discard", dir: in, from: Active, after: 2500 * time.Millisecond, in: Local{Action: Discard},
			want: HangingUp, event: EvDiscard, actions: disc(ReasonHangup, 2, 0)},
		{name: "active_in/decline", dir: in, from: Active, in: Local{Action: Decline}, want: Active, err: calld.ECONFLICT},

		// Malformed inputs.
		{name: "nil_constructor", dir: out, from: Waiting, in: Remote{}, want: Waiting, ignored: true},
		{name: "typed_nil_constructor", dir: out, from: Waiting, in: Remote{Call: (*tg.PhoneCall)(nil)}, want: Waiting, ignored: true},
		{name: "unknown_local", dir: out, from: Waiting, in: Local{Action: "dance"}, want: Waiting, err: calld.EINVALID},
		{name: "unknown_method", dir: out, from: Waiting, in: RPCResult{Method: "phone.x"}, want: Waiting, ignored: true},
		{name: "nil_input", dir: out, from: Waiting, in: nil, want: Waiting, ignored: true},
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
				if c.State == HangingUp || c.State == Ended {
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
	for _, dir := range []Direction{Incoming, Outgoing} {
		clk := newClock()
		m := reach(t, dir, Ended, clk, Timeouts{})
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
func catalog(dir Direction) []Input {
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
