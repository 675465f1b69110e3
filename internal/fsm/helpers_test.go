package fsm

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
)

const (
	selfID  int64 = 100
	peerID  int64 = 200
	callID  int64 = 777
	hash    int64 = 555
	randID  int32 = 42
	relayA  int64 = 9001
	relayB  int64 = 9002
	otherID int64 = 778
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is the tests' fake clock.
type clock struct{ now time.Time }

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time { return c.now }

func (c *clock) Advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

// parties returns admin and participant ids of a call of direction dir.
func parties(dir calld.Direction) (admin, participant int64) {
	if dir == calld.DirectionIncoming {
		return peerID, selfID
	}
	return selfID, peerID
}

func requested(video bool) *tg.PhoneCallRequested {
	return &tg.PhoneCallRequested{ID: callID, AccessHash: hash, Date: int(t0.Unix()),
		AdminID: peerID, ParticipantID: selfID, Video: video}
}

func waitingPC(dir calld.Direction, received bool) *tg.PhoneCallWaiting {
	a, p := parties(dir)
	w := &tg.PhoneCallWaiting{ID: callID, AccessHash: hash, Date: int(t0.Unix()), AdminID: a, ParticipantID: p}
	if received {
		w.SetReceiveDate(int(t0.Unix()) + 1)
	}
	return w
}

func acceptedPC(dir calld.Direction) *tg.PhoneCallAccepted {
	a, p := parties(dir)
	return &tg.PhoneCallAccepted{ID: callID, AccessHash: hash, Date: int(t0.Unix()), AdminID: a, ParticipantID: p}
}

func phoneCallPC(dir calld.Direction) *tg.PhoneCall {
	a, p := parties(dir)
	return &tg.PhoneCall{ID: callID, AccessHash: hash, Date: int(t0.Unix()), AdminID: a, ParticipantID: p,
		Connections: []tg.PhoneConnectionClass{
			&tg.PhoneConnection{ID: relayA, IP: "198.51.100.1", Ipv6: "2001:db8::1", Port: 500, PeerTag: []byte("secret")},
			&tg.PhoneConnectionWebrtc{ID: relayB, IP: "198.51.100.2", Port: 3478, Username: "u", Password: "p"},
		}}
}

func discardedPC(reason tg.PhoneCallDiscardReasonClass, duration int) *tg.PhoneCallDiscarded {
	d := &tg.PhoneCallDiscarded{ID: callID}
	if reason != nil {
		d.SetReason(reason)
	}
	if duration != 0 {
		d.SetDuration(duration)
	}
	return d
}

func remote(pc tg.PhoneCallClass) Remote { return Remote{Call: pc} }

func rpcErr(code int, typ string) error {
	return fmt.Errorf("invoke: %w", tgerr.New(code, typ))
}

// path is the canonical way from creation to ended, per direction.
func path(dir calld.Direction) []Input {
	if dir == calld.DirectionIncoming {
		return []Input{
			Local{Action: Acknowledge},
			Local{Action: Accept},
			RPCResult{Method: MethodAccept},
			remote(phoneCallPC(calld.DirectionIncoming)),
			Local{Action: Discard},
			RPCResult{Method: MethodDiscard},
		}
	}
	return []Input{
		Remote{Call: waitingPC(calld.DirectionOutgoing, false), FromRPC: true},
		remote(waitingPC(calld.DirectionOutgoing, true)),
		remote(acceptedPC(calld.DirectionOutgoing)),
		remote(phoneCallPC(calld.DirectionOutgoing)),
		Local{Action: Discard},
		RPCResult{Method: MethodDiscard},
	}
}

// create makes a new machine of direction dir at clk's time.
func create(dir calld.Direction, clk *clock, t Timeouts) *Machine {
	if dir == calld.DirectionIncoming {
		return NewIncoming(requested(false), "", clk.Now(), t)
	}
	return NewOutgoing(peerID, "", randID, false, clk.Now(), t)
}

// reach drives a new machine along path(dir), one second per input, until
// it is in state s.
func reach(t testing.TB, dir calld.Direction, s calld.State, clk *clock, to Timeouts) *Machine {
	t.Helper()
	m := create(dir, clk, to)
	for _, in := range path(dir) {
		if m.c.State == s {
			return m
		}
		st := m.Handle(in, clk.Advance(time.Second))
		if st.Ignored != "" || st.Err != nil {
			t.Fatalf("reach %s %s: %#v: ignored %q err %v", dir, s, in, st.Ignored, st.Err)
		}
	}
	if m.c.State != s {
		t.Fatalf("reach %s %s: ended in %s", dir, s, m.c.State)
	}
	return m
}

// pending is an outgoing call still requesting with a hang-up pending.
func pending(t testing.TB, clk *clock, to Timeouts) *Machine {
	t.Helper()
	m := create(calld.DirectionOutgoing, clk, to)
	st := m.Handle(Local{Action: Discard}, clk.Advance(time.Second))
	if st.Err != nil || st.Ignored != "" || !m.c.HangupPending {
		t.Fatalf("pending: %+v", st)
	}
	return m
}

func errCode(err error) string { return calld.ErrorCode(err) }

// discards returns the SendDiscard actions of st.
func discards(st Step) []SendDiscard {
	var out []SendDiscard
	for _, a := range st.Actions {
		if d, ok := a.(SendDiscard); ok {
			out = append(out, d)
		}
	}
	return out
}

var errPlain = errors.New("connection reset")
