package fsm

import (
	"math"
	"testing"
	"time"
)

func TestDiscardReason(t *testing.T) {
	active := t0
	cases := []struct {
		name      string
		c         Call
		requested Reason
		cause     Cause
		want      Reason
	}{
		{"out requesting discard", Call{Direction: Outgoing, State: Requesting}, "", CauseDiscard, ReasonMissed},
		{"out waiting discard", Call{Direction: Outgoing, State: Waiting}, ReasonAuto, CauseDiscard, ReasonMissed},
		{"out ringing discard", Call{Direction: Outgoing, State: Ringing}, "", CauseDiscard, ReasonMissed},
		{"out keys discard", Call{Direction: Outgoing, State: ExchangingKeys}, "", CauseDiscard, ReasonHangup},
		{"out active discard", Call{Direction: Outgoing, State: Active, ActiveAt: &active}, "", CauseDiscard, ReasonHangup},
		{"in waiting discard", Call{Direction: Incoming, State: Waiting}, "", CauseDiscard, ReasonBusy},
		{"in ringing discard", Call{Direction: Incoming, State: Ringing}, "", CauseDiscard, ReasonBusy},
		{"in ringing decline", Call{Direction: Incoming, State: Ringing}, "", CauseDecline, ReasonBusy},
		{"in accepting discard", Call{Direction: Incoming, State: Accepting}, "", CauseDiscard, ReasonHangup},
		{"in keys discard", Call{Direction: Incoming, State: ExchangingKeys}, "", CauseDiscard, ReasonHangup},
		{"in active discard", Call{Direction: Incoming, State: Active}, "", CauseDiscard, ReasonHangup},
		{"fail before accept", Call{Direction: Incoming, State: Ringing}, "", CauseFail, ReasonDisconnect},
		{"fail active", Call{Direction: Outgoing, State: Active}, "", CauseFail, ReasonDisconnect},
		{"timeout out waiting", Call{Direction: Outgoing, State: Waiting}, "", CauseTimeout, ReasonMissed},
		{"timeout out ringing", Call{Direction: Outgoing, State: Ringing}, "", CauseTimeout, ReasonMissed},
		{"timeout in ringing", Call{Direction: Incoming, State: Ringing}, "", CauseTimeout, ReasonMissed},
		{"timeout in accepting", Call{Direction: Incoming, State: Accepting}, "", CauseTimeout, ReasonDisconnect},
		{"timeout keys", Call{Direction: Outgoing, State: ExchangingKeys}, "", CauseTimeout, ReasonDisconnect},
		{"max duration", Call{Direction: Outgoing, State: Active}, "", CauseMaxDuration, ReasonHangup},
		{"restart active", Call{Direction: Incoming, State: Active}, "", CauseRestart, ReasonDisconnect},
		{"restart out ringing", Call{Direction: Outgoing, State: Ringing}, "", CauseRestart, ReasonMissed},
		{"restart in ringing", Call{Direction: Incoming, State: Ringing}, "", CauseRestart, ReasonBusy},
		{"explicit wins", Call{Direction: Outgoing, State: Active}, ReasonDisconnect, CauseDiscard, ReasonDisconnect},
		{"explicit busy on outgoing", Call{Direction: Outgoing, State: Waiting}, ReasonBusy, CauseDiscard, ReasonBusy},
		{"explicit on timeout", Call{Direction: Incoming, State: Ringing}, ReasonHangup, CauseTimeout, ReasonHangup},
		{"invalid explicit ignored", Call{Direction: Incoming, State: Ringing}, "rude", CauseDiscard, ReasonBusy},
		{"hanging up keeps its reason", Call{Direction: Outgoing, State: HangingUp, Reason: ReasonMissed}, ReasonHangup, CauseDiscard, ReasonMissed},
		{"ended keeps its reason", Call{Direction: Outgoing, State: Ended, Reason: ReasonBusy}, ReasonHangup, CauseFail, ReasonBusy},
		{"zero call", Call{}, ReasonHangup, CauseDiscard, ReasonNone},
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
		c    Call
		want Reason
	}{
		{Call{Direction: Outgoing, State: Active}, ReasonDisconnect},
		{Call{Direction: Incoming, State: Active}, ReasonDisconnect},
		{Call{Direction: Incoming, State: HangingUp, ActiveAt: &active}, ReasonDisconnect},
		{Call{Direction: Outgoing, State: Requesting}, ReasonMissed},
		{Call{Direction: Outgoing, State: ExchangingKeys}, ReasonMissed},
		{Call{Direction: Incoming, State: Ringing}, ReasonBusy},
		{Call{Direction: Incoming, State: ExchangingKeys}, ReasonBusy},
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
	conns := []Connection{{ID: relayA}, {ID: relayB}}
	cases := []struct {
		name string
		c    Call
		want int64
	}{
		{"reported and active", Call{ActiveAt: &active, Connections: conns, ConnectionID: relayB}, relayB},
		{"not among connections", Call{ActiveAt: &active, Connections: conns, ConnectionID: 5}, 0},
		{"never active", Call{Connections: conns, ConnectionID: relayA}, 0},
		{"nothing reported", Call{ActiveAt: &active, Connections: conns}, 0},
		{"no connections", Call{ActiveAt: &active, ConnectionID: relayA}, 0},
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
		if got := Video(Call{Video: tc.call, LocalVideo: tc.local}, tc.server); got != tc.want {
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
