package fsm

import (
	"math"
	"testing"
	"time"

	"github.com/calld/calld"
)

func TestDiscardReason(t *testing.T) {
	active := t0
	cases := []struct {
		name      string
		c         calld.Call
		requested calld.Reason
		cause     Cause
		want      calld.Reason
	}{
		{"out requesting discard", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateRequesting}, "", CauseDiscard, calld.ReasonMissed},
		{"out waiting discard", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateWaiting}, calld.ReasonAuto, CauseDiscard, calld.ReasonMissed},
		{"out ringing discard", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateRinging}, "", CauseDiscard, calld.ReasonMissed},
		{"out keys discard", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateExchangingKeys}, "", CauseDiscard, calld.ReasonHangup},
		{"out active discard", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateActive, ActiveAt: &active}, "", CauseDiscard, calld.ReasonHangup},
		{"in waiting discard", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateWaiting}, "", CauseDiscard, calld.ReasonBusy},
		{"in ringing discard", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, "", CauseDiscard, calld.ReasonBusy},
		{"in ringing decline", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, "", CauseDecline, calld.ReasonBusy},
		{"in accepting discard", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateAccepting}, "", CauseDiscard, calld.ReasonHangup},
		{"in keys discard", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateExchangingKeys}, "", CauseDiscard, calld.ReasonHangup},
		{"in active discard", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateActive}, "", CauseDiscard, calld.ReasonHangup},
		{"fail before accept", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, "", CauseFail, calld.ReasonDisconnect},
		{"fail active", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateActive}, "", CauseFail, calld.ReasonDisconnect},
		{"timeout out waiting", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateWaiting}, "", CauseTimeout, calld.ReasonMissed},
		{"timeout out ringing", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateRinging}, "", CauseTimeout, calld.ReasonMissed},
		{"timeout in ringing", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, "", CauseTimeout, calld.ReasonMissed},
		{"timeout in accepting", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateAccepting}, "", CauseTimeout, calld.ReasonDisconnect},
		{"timeout keys", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateExchangingKeys}, "", CauseTimeout, calld.ReasonDisconnect},
		{"max duration", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateActive}, "", CauseMaxDuration, calld.ReasonHangup},
		{"restart active", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateActive}, "", CauseRestart, calld.ReasonDisconnect},
		{"restart out ringing", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateRinging}, "", CauseRestart, calld.ReasonMissed},
		{"restart in ringing", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, "", CauseRestart, calld.ReasonBusy},
		{"explicit wins", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateActive}, calld.ReasonDisconnect, CauseDiscard, calld.ReasonDisconnect},
		{"explicit busy on outgoing", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateWaiting}, calld.ReasonBusy, CauseDiscard, calld.ReasonBusy},
		{"explicit on timeout", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, calld.ReasonHangup, CauseTimeout, calld.ReasonHangup},
		{"invalid explicit ignored", calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, "rude", CauseDiscard, calld.ReasonBusy},
		{"hanging up keeps its reason", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateHangingUp, Reason: calld.ReasonMissed}, calld.ReasonHangup, CauseDiscard, calld.ReasonMissed},
		{"ended keeps its reason", calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateEnded, Reason: calld.ReasonBusy}, calld.ReasonHangup, CauseFail, calld.ReasonBusy},
		{"zero call", calld.Call{}, calld.ReasonHangup, CauseDiscard, calld.ReasonNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := DiscardReason(tc.c, tc.requested, tc.cause); got != tc.want {
				t.Fatalf("DiscardReason = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRestartReason(t *testing.T) {
	active := t0
	cases := []struct {
		c    calld.Call
		want calld.Reason
	}{
		{calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateActive}, calld.ReasonDisconnect},
		{calld.Call{Direction: calld.DirectionIncoming, State: calld.StateActive}, calld.ReasonDisconnect},
		{calld.Call{Direction: calld.DirectionIncoming, State: calld.StateHangingUp, ActiveAt: &active}, calld.ReasonDisconnect},
		{calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateRequesting}, calld.ReasonMissed},
		{calld.Call{Direction: calld.DirectionOutgoing, State: calld.StateExchangingKeys}, calld.ReasonMissed},
		{calld.Call{Direction: calld.DirectionIncoming, State: calld.StateRinging}, calld.ReasonBusy},
		{calld.Call{Direction: calld.DirectionIncoming, State: calld.StateExchangingKeys}, calld.ReasonBusy},
	}
	for _, tc := range cases {
		if got := RestartReason(tc.c); got != tc.want {
			t.Errorf("RestartReason(%s %s) = %q, want %q", tc.c.Direction, tc.c.State, got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	cases := []struct {
		name   string
		active *time.Time
		now    time.Time
		want   int32
	}{
		{"never active", nil, t0.Add(time.Hour), 0},
		{"same instant", &t0, t0, 0},
		{"under a second", &t0, t0.Add(999 * time.Millisecond), 0},
		{"whole seconds, truncated", &t0, t0.Add(61*time.Second + 900*time.Millisecond), 61},
		{"clock jumped back", &t0, t0.Add(-time.Hour), 0},
		{"max int32 exactly", &t0, t0.Add(math.MaxInt32 * time.Second), math.MaxInt32},
		{"clamped", &t0, t0.Add((math.MaxInt32 + 10) * time.Second), math.MaxInt32},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Duration(tc.active, tc.now); got != tc.want {
				t.Fatalf("Duration = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestConnectionID(t *testing.T) {
	active := t0
	conns := []calld.Connection{{ID: relayA}, {ID: relayB}}
	cases := []struct {
		name string
		c    calld.Call
		want int64
	}{
		{"reported and active", calld.Call{ActiveAt: &active, Connections: conns, ConnectionID: relayB}, relayB},
		{"not among connections", calld.Call{ActiveAt: &active, Connections: conns, ConnectionID: 5}, 0},
		{"never active", calld.Call{Connections: conns, ConnectionID: relayA}, 0},
		{"nothing reported", calld.Call{ActiveAt: &active, Connections: conns}, 0},
		{"no connections", calld.Call{ActiveAt: &active, ConnectionID: relayA}, 0},
	}
	for _, tc := range cases {
		if got := ConnectionID(tc.c); got != tc.want {
			t.Errorf("%s: ConnectionID = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestVideo(t *testing.T) {
	cases := []struct {
		call, local, server, want bool
	}{
		{false, false, false, false},
		{true, false, false, true},
		{false, true, false, true},
		{false, false, true, true},
		{true, true, true, true},
	}
	for _, tc := range cases {
		if got := Video(calld.Call{Video: tc.call, LocalVideo: tc.local}, tc.server); got != tc.want {
			t.Errorf("Video(call %v, local %v, server %v) = %v", tc.call, tc.local, tc.server, got)
		}
	}
}

func TestStale(t *testing.T) {
	date := int(t0.Unix())
	cases := []struct {
		name string
		ring time.Duration
		now  time.Time
		want bool
	}{
		{"fresh", 90 * time.Second, t0.Add(10 * time.Second), false},
		{"exactly at the end", 90 * time.Second, t0.Add(90 * time.Second), false},
		{"just past", 90 * time.Second, t0.Add(90*time.Second + time.Millisecond), true},
		{"short ring", 5 * time.Second, t0.Add(6 * time.Second), true},
		{"zero ring means default", 0, t0.Add(89 * time.Second), false},
		{"zero ring means default, past", 0, t0.Add(91 * time.Second), true},
		{"date in the future", 90 * time.Second, t0.Add(-time.Hour), false},
	}
	for _, tc := range cases {
		if got := Stale(date, tc.ring, tc.now); got != tc.want {
			t.Errorf("%s: Stale = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTimeoutsWithDefaults(t *testing.T) {
	got := Timeouts{Receive: -1, MaxDuration: -time.Second}.WithDefaults()
	want := Timeouts{Receive: DefaultReceive, Ring: DefaultRing, Hangup: DefaultHangup}
	if got != want {
		t.Fatalf("WithDefaults = %+v, want %+v", got, want)
	}
	set := Timeouts{Receive: time.Second, Ring: 2 * time.Second, MaxDuration: 3 * time.Second, Hangup: 4 * time.Second}
	if set.WithDefaults() != set {
		t.Fatalf("WithDefaults changed set values: %+v", set.WithDefaults())
	}
}
