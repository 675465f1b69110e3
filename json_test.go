package calld_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/calld/calld"
)

// reflectCall and reflectEvent are the encodings AppendJSON replaced:
// encoding/json over the record, its times swapped for calld.Time. The
// hand-written encoder must write the same bytes.
func reflectCall(c calld.Call) ([]byte, error) {
	type plain calld.Call
	return json.Marshal(struct {
		plain
		CreatedAt *calld.Time `json:"created_at,omitempty"`
		RingingAt *calld.Time `json:"ringing_at,omitempty"`
		ActiveAt  *calld.Time `json:"active_at,omitempty"`
		EndedAt   *calld.Time `json:"ended_at,omitempty"`
		Deadline  *calld.Time `json:"deadline,omitempty"`
	}{
		plain:     plain(c),
		CreatedAt: calld.TimePtr(c.CreatedAt),
		RingingAt: calld.TimePtr(c.RingingAt),
		ActiveAt:  calld.TimePtr(c.ActiveAt),
		EndedAt:   calld.TimePtr(c.EndedAt),
		Deadline:  calld.TimePtr(c.Deadline),
	})
}

func reflectEvent(e calld.Event) ([]byte, error) {
	type plain calld.Event
	return json.Marshal(struct {
		plain
		At calld.Time `json:"at"`
	}{plain: plain(e), At: calld.Time(e.At)})
}

// fullCall sets every field of a call record, each to a value that is
// written (no omitempty field left out).
func fullCall() calld.Call {
	at := time.Date(2026, 11, 24, 23, 0, 5, 0, time.FixedZone("X", 3600))
	t := func(d time.Duration) *time.Time { v := at.Add(d); return &v }
	return calld.Call{
		ID: -9223372036854775808, AccessHash: 9223372036854775807, Direction: calld.DirectionOutgoing,
		PeerID: 42, State: calld.StateHangingUp, Video: true,
		CreatedAt: t(0), RingingAt: t(time.Nanosecond), ActiveAt: t(1500 * time.Millisecond), EndedAt: t(time.Hour),
		Duration: 3599, Reason: calld.ReasonHangup, EndedBy: calld.EndedByRemote, ConnectionID: 7,
		Connections: []calld.Connection{{ID: 1, IP: "1.2.3.4", Port: 443}, {ID: -2, IP: "5.6.7.8", IPv6: "::1", Port: 0}},

		NeedRating: true, NeedDebug: true, Error: "FLOOD_WAIT_3 <&> \"q\" \\ \t\n\r\b\f\x00\x1f\x7f é \u2028\u2029 \xff\xfe 😀",
		Date: 1764543605, PeerUsername: "peer_name", AdminID: 1, ParticipantID: 2, RandomID: -5, LocalVideo: true,
		Deadline: t(90 * time.Second), DeadlineKind: "ring", HangupPending: true, PendingEndedBy: calld.EndedByLocal,
	}
}

// TestAppendJSON: the hand-written encoders write what encoding/json
// writes for the same record or event, for zero values, every field set,
// empty and nil connections, and strings that need escaping.
func TestAppendJSON(t *testing.T) {
	full := fullCall()
	noConns := full
	noConns.Connections = []calld.Connection{}
	fullEvent := calld.Event{Seq: 18446744073709551615, At: *full.EndedAt, Event: "call.state", CallID: -1,
		From: "hanging_up", To: "ended", Reason: full.Error, Duration: -3}
	for _, tc := range []struct {
		name   string
		v      any
		ref    func() ([]byte, error)
		append func([]byte) []byte
	}{
		{"call zero", calld.Call{}, func() ([]byte, error) { return reflectCall(calld.Call{}) }, (&calld.Call{}).AppendJSON},
		{"call full", full, func() ([]byte, error) { return reflectCall(full) }, full.AppendJSON},
		{"call no connections", noConns, func() ([]byte, error) { return reflectCall(noConns) }, noConns.AppendJSON},
		{"event zero", calld.Event{}, func() ([]byte, error) { return reflectEvent(calld.Event{}) }, (&calld.Event{}).AppendJSON},
		{"event full", fullEvent, func() ([]byte, error) { return reflectEvent(fullEvent) }, fullEvent.AppendJSON},
	} {
		want, err := tc.ref()
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(tc.v) // through MarshalJSON, compacted
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, want)
		}
		if got := tc.append([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("%s: AppendJSON does not append: %s", tc.name, got)
		}
	}
}

// FuzzAppendJSON holds the hand-written encoders equal to encoding/json
// for any strings, numbers and times (go test -fuzz FuzzAppendJSON .).
func FuzzAppendJSON(f *testing.F) {
	full := fullCall()
	f.Add(full.Error, "ring", "1.2.3.4", int64(1), int64(-1), 3, uint64(9), int64(1764543605123456789), true, false)
	f.Add("", "", "", int64(0), int64(0), 0, uint64(0), int64(0), false, true)
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, id, hash int64, n int, seq uint64, unixNano int64, b1, b2 bool) {
		at := time.Unix(0, unixNano).In(time.FixedZone("F", n%86400))
		c := full
		c.ID, c.AccessHash, c.PeerID, c.AdminID, c.ParticipantID, c.ConnectionID = id, hash, -id, id, -hash, hash
		c.Direction, c.State, c.Reason, c.EndedBy = calld.Direction(s1), calld.State(s2), calld.Reason(s3), calld.EndedBy(s1)
		c.Error, c.PeerUsername, c.DeadlineKind, c.PendingEndedBy = s1, s2, s3, calld.EndedBy(s2)
		c.Duration, c.Date, c.RandomID = n, -n, int32(n)
		c.Video, c.NeedRating, c.NeedDebug, c.LocalVideo, c.HangupPending = b1, b2, b1, b2, b1
		c.CreatedAt, c.Deadline = &at, nil
		if b2 {
			c.RingingAt, c.ActiveAt, c.EndedAt = nil, &at, nil
		}
		c.Connections = []calld.Connection{{ID: id, IP: s3, IPv6: s2, Port: n}}
		if b1 {
			c.Connections = nil
		}
		want, err := reflectCall(c)
		if err != nil {
			t.Skip(err) // a time outside RFC 3339's years: not a record's
		}
		if got := c.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("call:\n got %s\nwant %s", got, want)
		}
		e := calld.Event{Seq: seq, At: at, Event: s1, CallID: id, From: s2, To: s3, Reason: s1, Duration: n}
		want, err = reflectEvent(e)
		if err != nil {
			t.Skip(err)
		}
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("event:\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkCallJSON: a live incoming call's record as the loop encodes it
// at each step, hand-written against encoding/json.
func BenchmarkCallJSON(b *testing.B) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 123, time.UTC)
	c := calld.Call{ID: 8120394871234, AccessHash: -81203948712341, Direction: calld.DirectionIncoming, PeerID: 777000,
		State: calld.StateHangingUp, CreatedAt: &at, RingingAt: &at, Reason: calld.ReasonBusy, EndedBy: calld.EndedByNone,
		Date: 1764504000, AdminID: 777000, ParticipantID: 1, PendingEndedBy: calld.EndedByLocal}
	e := calld.Event{Seq: 123456, At: at, Event: "call.state", CallID: c.ID, From: "ringing", To: "hanging_up", Reason: "busy"}
	for _, bm := range []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"call/append", c.MarshalJSON},
		{"call/reflect", func() ([]byte, error) { return reflectCall(c) }},
		{"event/append", e.MarshalJSON},
		{"event/reflect", func() ([]byte, error) { return reflectEvent(e) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.enc(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
