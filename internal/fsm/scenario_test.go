package fsm

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
)

// feed applies inputs one second apart and returns every step.
func feed(m *Machine, clk *clock, ins ...Input) []Step {
	var out []Step
	for _, in := range ins {
		out = append(out, m.Handle(in, clk.Advance(time.Second)))
	}
	return out
}

// allDiscards collects the SendDiscard actions of steps.
func allDiscards(steps []Step) []SendDiscard {
	var out []SendDiscard
	for _, st := range steps {
		out = append(out, discards(st)...)
	}
	return out
}

func wantEnded(t *testing.T, c calld.Call, by calld.EndedBy, r calld.Reason) {
	t.Helper()
	if c.State != calld.StateEnded || c.EndedBy != by || c.Reason != r {
		t.Fatalf("call %s ended_by %q reason %q, want ended %q %q", c.State, c.EndedBy, c.Reason, by, r)
	}
}

func wantOneDiscard(t *testing.T, steps []Step, want SendDiscard) {
	t.Helper()
	got := allDiscards(steps)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("discards %+v, want exactly %+v", got, want)
	}
}

// TestScenarios covers the scenarios of reference/calls.md §5(f) that need
// no network; case names carry the scenario number. 21 (pts of the discard
// result) belongs to the updates engine.
func TestScenarios(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"S01_decline_ringing_busy_video_copied", func(t *testing.T) {
			clk := newClock()
			m := NewIncoming(requested(true), "", clk.Now(), Timeouts{})
			steps := feed(m, clk, Local{Action: Acknowledge}, Local{Action: Decline})
			wantOneDiscard(t, steps, SendDiscard{Reason: calld.ReasonBusy, Duration: 0, ConnectionID: 0, Video: true})
		}},
		{"S02_hangup_outgoing_before_and_after_receive_date", func(t *testing.T) {
			for _, received := range []bool{false, true} {
				clk := newClock()
				m := create(calld.DirectionOutgoing, clk, Timeouts{})
				steps := feed(m, clk, remote(waitingPC(calld.DirectionOutgoing, false)))
				if received {
					steps = append(steps, feed(m, clk, remote(waitingPC(calld.DirectionOutgoing, true)))...)
				}
				steps = append(steps, feed(m, clk, Local{Action: Discard})...)
				wantOneDiscard(t, steps, SendDiscard{Reason: calld.ReasonMissed})
			}
		}},
		{"S03_hangup_during_request_id_arrives", func(t *testing.T) {
			clk := newClock()
			m := create(calld.DirectionOutgoing, clk, Timeouts{})
			st := m.Handle(Local{Action: Discard}, clk.Advance(time.Second))
			if len(st.Actions) != 0 || st.Err != nil || m.c.State != calld.StateRequesting {
				t.Fatalf("discard while requesting: %+v in %s", st, m.c.State)
			}
			steps := feed(m, clk, Remote{Call: waitingPC(calld.DirectionOutgoing, false), FromRPC: true}, RPCResult{Method: MethodDiscard})
			wantOneDiscard(t, steps, SendDiscard{Reason: calld.ReasonMissed})
			wantEnded(t, m.Call(), calld.EndedByLocal, calld.ReasonMissed)
		}},
		{"S03_hangup_during_request_rpc_error", func(t *testing.T) {
			clk := newClock()
			m := create(calld.DirectionOutgoing, clk, Timeouts{})
			steps := feed(m, clk, Local{Action: Discard}, RPCResult{Method: MethodRequest, Err: rpcErr(400, "USER_BUSY")})
			if d := allDiscards(steps); len(d) != 0 {
				t.Fatalf("discard sent without an id: %+v", d)
			}
			wantEnded(t, m.Call(), calld.EndedByError, calld.ReasonMissed)
		}},
		{"S03_hangup_during_request_watchdog", func(t *testing.T) {
			clk := newClock()
			m := create(calld.DirectionOutgoing, clk, Timeouts{})
			feed(m, clk, Local{Action: Discard})
			if k, due := m.Due(clk.Advance(DefaultHangup - time.Millisecond)); due {
				t.Fatalf("watchdog due early: %s", k)
			}
			k, due := m.Due(clk.Advance(time.Millisecond))
			if !due || k != TimerHangup {
				t.Fatalf("Due = %s %v, want hangup", k, due)
			}
			st := m.Handle(Timer{Kind: k}, clk.Now())
			if len(st.Actions) != 0 {
				t.Fatalf("watchdog sent %+v", st.Actions)
			}
			wantEnded(t, m.Call(), calld.EndedByLocal, calld.ReasonMissed)
		}},
		{"S04_hangup_active_whole_seconds", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateActive, clk, Timeouts{})
			st := m.Handle(Local{Action: Discard}, clk.Advance(125*time.Second+700*time.Millisecond))
			wantOneDiscard(t, []Step{st}, SendDiscard{Reason: calld.ReasonHangup, Duration: 125})
			st = m.Handle(RPCResult{Method: MethodDiscard}, clk.Advance(3*time.Second))
			c := m.Call()
			wantEnded(t, c, calld.EndedByLocal, calld.ReasonHangup)
			if c.Duration != 125 || st.Transitions[0].Duration != 125 {
				t.Fatalf("ended duration %d / journal %d, want the 125 sent", c.Duration, st.Transitions[0].Duration)
			}
		}},
		{"S05_hangup_exchanging_keys", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionIncoming, calld.StateExchangingKeys, clk, Timeouts{})
			st := m.Handle(Local{Action: Discard}, clk.Advance(7*time.Second))
			wantOneDiscard(t, []Step{st}, SendDiscard{Reason: calld.ReasonHangup})
		}},
		{"S06_key_failure_disconnect", func(t *testing.T) {
			for _, from := range []calld.State{calld.StateAccepting, calld.StateExchangingKeys, calld.StateActive} {
				clk := newClock()
				m := reach(t, calld.DirectionIncoming, from, clk, Timeouts{})
				st := m.Handle(Local{Action: Fail, Message: "key fingerprint mismatch"}, clk.Advance(time.Second))
				d := discards(st)
				if len(d) != 1 || d[0].Reason != calld.ReasonDisconnect {
					t.Fatalf("from %s: %+v", from, st)
				}
				m.Handle(RPCResult{Method: MethodDiscard}, clk.Advance(time.Second))
				c := m.Call()
				wantEnded(t, c, calld.EndedByError, calld.ReasonDisconnect)
				if c.Error != "key fingerprint mismatch" {
					t.Fatalf("error %q", c.Error)
				}
			}
		}},
		{"S07_hangup_twice_one_rpc", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateActive, clk, Timeouts{})
			steps := feed(m, clk, Local{Action: Discard}, Local{Action: Discard, Reason: calld.ReasonDisconnect},
				Local{Action: Fail}, Timer{Kind: TimerMaxDuration}, Local{Action: Discard})
			if n := len(allDiscards(steps)); n != 1 {
				t.Fatalf("%d discards", n)
			}
			for _, st := range steps[1:] {
				if st.Err == nil && st.Ignored == "" {
					t.Fatalf("second hang-up accepted: %+v", st)
				}
			}
			if errCode(steps[1].Err) != calld.ECONFLICT {
				t.Fatalf("second discard: %v, want conflict", steps[1].Err)
			}
		}},
		{"S08_remote_discard_before_our_rpc", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateHangingUp, clk, Timeouts{})
			before := m.Call()
			steps := feed(m, clk, remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 0)),
				RPCResult{Method: MethodDiscard, Err: rpcErr(400, "CALL_ALREADY_DECLINED")})
			wantEnded(t, m.Call(), calld.EndedByLocal, before.Reason)
			if steps[1].Ignored == "" {
				t.Fatal("late discard result not ignored")
			}
		}},
		{"S09_remote_discard_wins_over_late_errors", func(t *testing.T) {
			for _, err := range []error{rpcErr(400, "CALL_ALREADY_DECLINED"), rpcErr(400, "CALL_ALREADY_ACCEPTED"), errPlain} {
				clk := newClock()
				m := reach(t, calld.DirectionIncoming, calld.StateActive, clk, Timeouts{})
				feed(m, clk, remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 0)))
				ended := m.Call()
				wantEnded(t, ended, calld.EndedByRemote, calld.ReasonHangup)
				steps := feed(m, clk, Local{Action: Discard}, RPCResult{Method: MethodDiscard, Err: err})
				if errCode(steps[0].Err) != calld.ECONFLICT || steps[1].Ignored == "" {
					t.Fatalf("after a remote end: %+v", steps)
				}
				if !reflect.DeepEqual(m.Call(), ended) {
					t.Fatalf("late error changed the record: %+v", m.Call())
				}
			}
		}},
		{"S10_discarded_twice_one_terminal_event", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateHangingUp, clk, Timeouts{})
			d := discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 0)
			steps := feed(m, clk, Remote{Call: d, FromRPC: true}, RPCResult{Method: MethodDiscard}, Remote{Call: d})
			n := 0
			for _, st := range steps {
				n += len(st.Transitions)
			}
			if n != 1 || steps[1].Ignored == "" || steps[2].Ignored == "" {
				t.Fatalf("%d transitions: %+v", n, steps)
			}
		}},
		{"S11_duplicate_and_stale_requested", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionIncoming, calld.StateRinging, clk, Timeouts{})
			if st := m.Handle(remote(requested(false)), clk.Advance(time.Second)); st.Ignored == "" {
				t.Fatalf("duplicate phoneCallRequested: %+v", st)
			}
			if Stale(requested(false).Date, DefaultRing, t0.Add(80*time.Second)) {
				t.Fatal("fresh call judged stale")
			}
			if !Stale(requested(false).Date, DefaultRing, t0.Add(91*time.Second)) {
				t.Fatal("stale call would ring")
			}
		}},
		{"S12_accepted_on_other_device", func(t *testing.T) {
			for _, from := range []calld.State{calld.StateWaiting, calld.StateRinging, calld.StateAccepting} {
				clk := newClock()
				m := reach(t, calld.DirectionIncoming, from, clk, Timeouts{})
				st := m.Handle(remote(discardedPC(nil, 0)), clk.Advance(time.Second))
				if len(st.Actions) != 0 {
					t.Fatalf("sent %+v", st.Actions)
				}
				wantEnded(t, m.Call(), calld.EndedByOtherDevice, calld.ReasonNone)
			}
		}},
		{"S13_discard_errors", func(t *testing.T) {
			cases := []struct {
				err error
				by  calld.EndedBy
			}{
				{rpcErr(400, "CALL_ALREADY_ACCEPTED"), calld.EndedByOtherDevice},
				{rpcErr(400, "CALL_ALREADY_DECLINED"), calld.EndedByLocal},
				{rpcErr(400, "CALL_PEER_INVALID"), calld.EndedByError},
				{rpcErr(500, "CALL_OCCUPY_FAILED"), calld.EndedByError},
				{rpcErr(420, "FLOOD_WAIT_120"), calld.EndedByError},
				{errPlain, calld.EndedByError},
			}
			for _, tc := range cases {
				clk := newClock()
				m := reach(t, calld.DirectionIncoming, calld.StateHangingUp, clk, Timeouts{})
				m.Handle(RPCResult{Method: MethodDiscard, Err: tc.err}, clk.Advance(time.Second))
				c := m.Call()
				wantEnded(t, c, tc.by, calld.ReasonHangup)
				if (tc.by == calld.EndedByError) != (c.Error != "") {
					t.Fatalf("%v: error %q", tc.err, c.Error)
				}
			}
		}},
		{"S14_timeouts_and_defaults", func(t *testing.T) {
			cases := []struct {
				dir   calld.Direction
				from  calld.State
				kind  TimerKind
				after time.Duration
				want  calld.Reason
			}{
				{calld.DirectionOutgoing, calld.StateWaiting, TimerReceive, 20 * time.Second, calld.ReasonMissed},
				{calld.DirectionOutgoing, calld.StateRinging, TimerRing, 90 * time.Second, calld.ReasonMissed},
				{calld.DirectionIncoming, calld.StateRinging, TimerRing, 90 * time.Second, calld.ReasonMissed},
				{calld.DirectionOutgoing, calld.StateExchangingKeys, TimerReceive, 20 * time.Second, calld.ReasonDisconnect},
				{calld.DirectionIncoming, calld.StateExchangingKeys, TimerReceive, 20 * time.Second, calld.ReasonDisconnect},
			}
			for _, tc := range cases {
				clk := newClock()
				m := reach(t, tc.dir, tc.from, clk, Timeouts{})
				if _, due := m.Due(clk.Advance(tc.after - time.Millisecond)); due {
					t.Fatalf("%s %s: due before the default %s", tc.dir, tc.from, tc.after)
				}
				k, due := m.Due(clk.Advance(time.Millisecond))
				if !due || k != tc.kind {
					t.Fatalf("%s %s: Due = %s %v", tc.dir, tc.from, k, due)
				}
				st := m.Handle(Timer{Kind: k}, clk.Now())
				wantOneDiscard(t, []Step{st}, SendDiscard{Reason: tc.want})
				if m.c.PendingEndedBy != calld.EndedByTimeout {
					t.Fatalf("pending ended_by %q", m.c.PendingEndedBy)
				}
			}
		}},
		{"S15_waiting_and_accepted_before_request_result", func(t *testing.T) {
			clk := newClock()
			m := create(calld.DirectionOutgoing, clk, Timeouts{})
			steps := feed(m, clk, remote(acceptedPC(calld.DirectionOutgoing)), Remote{Call: waitingPC(calld.DirectionOutgoing, false), FromRPC: true})
			if m.c.State != calld.StateExchangingKeys || m.c.ID != callID || !reflect.DeepEqual(steps[0].Actions, []Action{SendConfirm{}}) {
				t.Fatalf("early phoneCallAccepted: %+v %s", steps[0], m.c.State)
			}
			if steps[1].Ignored == "" {
				t.Fatal("the late requestCall result moved the call backwards")
			}
		}},
		{"S16_phone_call_empty", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionIncoming, calld.StateActive, clk, Timeouts{})
			st := m.Handle(remote(&tg.PhoneCallEmpty{ID: callID}), clk.Advance(3*time.Second))
			if len(st.Actions) != 0 {
				t.Fatalf("sent %+v", st.Actions)
			}
			wantEnded(t, m.Call(), calld.EndedByRemote, calld.ReasonNone)
			if m.c.Duration != 3 {
				t.Fatalf("duration %d", m.c.Duration)
			}
		}},
		{"S17_second_incoming_while_active_busy", func(t *testing.T) {
			clk := newClock()
			first := reach(t, calld.DirectionIncoming, calld.StateActive, clk, Timeouts{})
			before := first.Call()
			req := requested(false)
			req.ID, req.AccessHash = otherID, 1
			second := NewIncoming(req, "", clk.Now(), Timeouts{})
			st := second.Handle(Local{Action: Decline, Reason: calld.ReasonBusy}, clk.Advance(time.Second))
			wantOneDiscard(t, []Step{st}, SendDiscard{Reason: calld.ReasonBusy})
			// The second call's updates do not touch the first.
			for _, in := range []Input{remote(&tg.PhoneCallDiscarded{ID: otherID}), remote(req)} {
				if st := first.Handle(in, clk.Advance(time.Second)); st.Ignored == "" {
					t.Fatalf("first call took %#v: %+v", in, st)
				}
			}
			if !reflect.DeepEqual(first.Call(), before) {
				t.Fatal("first call changed")
			}
		}},
		{"S18_wrong_constructor_ignored", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionIncoming, calld.StateRinging, clk, Timeouts{})
			for _, in := range []Input{remote(acceptedPC(calld.DirectionIncoming)), remote(requested(false)), remote(phoneCallPC(calld.DirectionIncoming))} {
				if st := m.Handle(in, clk.Advance(time.Second)); st.Ignored == "" {
					t.Fatalf("%#v not ignored", in)
				}
			}
		}},
		{"S19_identity_mismatch_disconnect", func(t *testing.T) {
			bad := []*tg.PhoneCall{
				{ID: callID, AccessHash: hash + 1, AdminID: selfID, ParticipantID: peerID},
				{ID: callID, AccessHash: hash, AdminID: selfID + 1, ParticipantID: peerID},
				{ID: callID, AccessHash: hash, AdminID: selfID, ParticipantID: peerID + 1},
			}
			for _, pc := range bad {
				clk := newClock()
				m := reach(t, calld.DirectionOutgoing, calld.StateExchangingKeys, clk, Timeouts{})
				st := m.Handle(remote(pc), clk.Advance(time.Second))
				wantOneDiscard(t, []Step{st}, SendDiscard{Reason: calld.ReasonDisconnect})
				if m.c.PendingEndedBy != calld.EndedByError || m.c.Error == "" {
					t.Fatalf("%+v", m.c)
				}
			}
			// Another call's id is only ignored.
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateExchangingKeys, clk, Timeouts{})
			if st := m.Handle(remote(&tg.PhoneCall{ID: otherID}), clk.Advance(time.Second)); st.Ignored == "" {
				t.Fatalf("other call id not ignored: %+v", st)
			}
		}},
		{"S20_need_rating_and_debug_kept", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateActive, clk, Timeouts{})
			d := discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 30)
			d.SetFlags()
			d.NeedRating, d.NeedDebug = true, true
			st := m.Handle(remote(d), clk.Advance(time.Second))
			if len(st.Transitions) != 1 || st.Transitions[0].To != calld.StateEnded {
				t.Fatalf("terminal event delayed: %+v", st)
			}
			c := m.Call()
			if !c.NeedRating || !c.NeedDebug {
				t.Fatalf("need_rating %v need_debug %v", c.NeedRating, c.NeedDebug)
			}
		}},
		{"S20_duration_hint_when_never_active_here", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionIncoming, calld.StateRinging, clk, Timeouts{})
			m.Handle(remote(discardedPC(&tg.PhoneCallDiscardReasonHangup{}, 42)), clk.Advance(time.Second))
			if c := m.Call(); c.Duration != 42 || c.EndedBy != calld.EndedByRemote {
				t.Fatalf("duration %d ended_by %s", c.Duration, c.EndedBy)
			}
		}},
		{"S22_clock_jump_and_clamp", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateActive, clk, Timeouts{})
			st := m.Handle(Local{Action: Discard}, clk.Advance(-time.Hour))
			wantOneDiscard(t, []Step{st}, SendDiscard{Reason: calld.ReasonHangup, Duration: 0})
			clk = newClock()
			m = reach(t, calld.DirectionIncoming, calld.StateActive, clk, Timeouts{})
			st = m.Handle(Local{Action: Discard}, clk.Advance(200*365*24*time.Hour))
			wantOneDiscard(t, []Step{st}, SendDiscard{Reason: calld.ReasonHangup, Duration: math.MaxInt32})
		}},
		{"S23_received_call_already_declined", func(t *testing.T) {
			clk := newClock()
			m := create(calld.DirectionIncoming, clk, Timeouts{})
			st := m.Handle(RPCResult{Method: MethodReceived, Err: rpcErr(400, "CALL_ALREADY_DECLINED")}, clk.Advance(time.Second))
			c := m.Call()
			if c.RingingAt != nil || len(st.Actions) != 0 {
				t.Fatalf("rang or sent: %+v %+v", c, st)
			}
			wantEnded(t, c, calld.EndedByRemote, calld.ReasonMissed)
		}},
		{"S24_restart_discards_live_calls", func(t *testing.T) {
			cases := []struct {
				dir  calld.Direction
				from calld.State
				want calld.Reason
			}{
				{calld.DirectionOutgoing, calld.StateWaiting, calld.ReasonMissed},
				{calld.DirectionOutgoing, calld.StateRinging, calld.ReasonMissed},
				{calld.DirectionOutgoing, calld.StateExchangingKeys, calld.ReasonMissed},
				{calld.DirectionOutgoing, calld.StateActive, calld.ReasonDisconnect},
				{calld.DirectionIncoming, calld.StateRinging, calld.ReasonBusy},
				{calld.DirectionIncoming, calld.StateAccepting, calld.ReasonBusy},
				{calld.DirectionIncoming, calld.StateActive, calld.ReasonDisconnect},
			}
			for _, tc := range cases {
				clk := newClock()
				rec := reach(t, tc.dir, tc.from, clk, Timeouts{}).Call()
				m, err := Restore(rec, Timeouts{})
				if err != nil {
					t.Fatal(err)
				}
				st := m.Handle(Local{Action: Discard, Reason: RestartReason(rec)}, clk.Advance(time.Second))
				d := discards(st)
				if len(d) != 1 || d[0].Reason != tc.want {
					t.Fatalf("%s %s: %+v, want %s", tc.dir, tc.from, st, tc.want)
				}
				// Errors are not retried: the call ends either way.
				m.Handle(RPCResult{Method: MethodDiscard, Err: errPlain}, clk.Advance(time.Second))
				if m.c.State != calld.StateEnded {
					t.Fatalf("state %s", m.c.State)
				}
			}
		}},
		{"S24_restart_resends_discard_in_flight", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateActive, clk, Timeouts{})
			first := discards(m.Handle(Local{Action: Discard}, clk.Advance(9*time.Second)))
			r, err := Restore(m.Call(), Timeouts{})
			if err != nil {
				t.Fatal(err)
			}
			again := discards(r.Handle(Local{Action: Resend}, clk.Advance(time.Minute)))
			if !reflect.DeepEqual(first, again) {
				t.Fatalf("resend %+v, first %+v", again, first)
			}
		}},
		{"S24b_timed_out_discard_resent_once", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateActive, clk, Timeouts{})
			first := discards(m.Handle(Local{Action: Discard}, clk.Advance(9*time.Second)))
			if st := m.Handle(Local{Action: Resend}, clk.Advance(time.Second)); st.Ignored == "" {
				t.Fatalf("resend before any time-out: %+v", st)
			}
			timedOut := RPCResult{Method: MethodDiscard, Err: errors.New("no answer in time"), TimedOut: true}
			for i := 0; i < 2; i++ {
				if st := m.Handle(timedOut, clk.Advance(90*time.Second)); st.Ignored != "" || len(st.Actions) != 0 || m.c.State != calld.StateHangingUp {
					t.Fatalf("time-out %d: %+v in %s", i, st, m.c.State)
				}
				again := discards(m.Handle(Local{Action: Resend}, clk.Advance(time.Second)))
				if !reflect.DeepEqual(first, again) {
					t.Fatalf("resend %d %+v, first %+v", i, again, first)
				}
				if st := m.Handle(Local{Action: Resend}, clk.Advance(time.Second)); st.Ignored == "" {
					t.Fatalf("second resend after time-out %d: %+v", i, st)
				}
			}
			if st := m.Handle(RPCResult{Method: MethodDiscard}, clk.Advance(time.Second)); m.c.State != calld.StateEnded || m.c.EndedBy != calld.EndedByLocal {
				t.Fatalf("answer: %+v, %+v", st, m.c)
			}
		}},
		{"S25_video_turned_on_later", func(t *testing.T) {
			clk := newClock()
			m := reach(t, calld.DirectionOutgoing, calld.StateActive, clk, Timeouts{})
			steps := feed(m, clk, Local{Action: SetVideo, Video: true}, Local{Action: SetVideo, Video: false}, Local{Action: Discard})
			wantOneDiscard(t, steps, SendDiscard{Reason: calld.ReasonHangup, Duration: 3, Video: true})
		}},
		{"S25_server_video_flag_sticky", func(t *testing.T) {
			clk := newClock()
			m := create(calld.DirectionOutgoing, clk, Timeouts{})
			w := waitingPC(calld.DirectionOutgoing, false)
			w.Video = true
			steps := feed(m, clk, remote(w), remote(waitingPC(calld.DirectionOutgoing, true)), Local{Action: Discard})
			wantOneDiscard(t, steps, SendDiscard{Reason: calld.ReasonMissed, Video: true})
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, sc.run)
	}
}
