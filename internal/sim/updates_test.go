package sim

import (
	"testing"
	"time"

	"github.com/gotd/td/tg"
)

// sessionOf makes a request and returns the MTProto session it came from.
func sessionOf(t *testing.T, srv *Server, c *testClient) int64 {
	t.Helper()
	if _, err := c.api.HelpGetNearestDC(testCtx(t)); err != nil {
		t.Fatalf("help.getNearestDc: %v", err)
	}
	reqs := srv.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == "help.getNearestDc" {
			return reqs[i].Session
		}
	}
	t.Fatal("help.getNearestDc not recorded")
	return 0
}

func msgTexts(ms []tg.MessageClass) []string {
	var out []string
	for _, m := range ms {
		if mm, ok := m.(*tg.Message); ok {
			out = append(out, mm.Message)
		}
	}
	return out
}

func TestGetDifference(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("carol")
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)

	diff := func(t *testing.T, pts, date, limit int) tg.UpdatesDifferenceClass {
		t.Helper()
		d, err := c.api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: pts, Date: date, PtsTotalLimit: limit})
		if err != nil {
			t.Fatalf("updates.getDifference: %v", err)
		}
		return d
	}

	t.Run("empty", func(t *testing.T) {
		pts, _, seq, date := srv.State()
		d, ok := diff(t, pts, date+1, 0).(*tg.UpdatesDifferenceEmpty)
		if !ok || d.Seq != seq || d.Date != date {
			t.Fatalf("got %#v, want differenceEmpty{date %d seq %d}", d, date, seq)
		}
	})

	t.Run("open gap", func(t *testing.T) {
		pts0, _, seq0, date := srv.State()
		mark := srv.sentMark()
		srv.OpenGap(3)
		if got := srv.sentSince(mark); len(got) != 0 {
			t.Fatalf("OpenGap pushed %v", got)
		}
		d, ok := diff(t, pts0, date+1, 0).(*tg.UpdatesDifference)
		if !ok {
			t.Fatalf("got %T, want difference", d)
		}
		if len(d.NewMessages) != 3 || d.State.Pts != pts0+3 || d.State.Seq != seq0 {
			t.Fatalf("difference: %d messages, state %+v (from pts %d)", len(d.NewMessages), d.State, pts0)
		}
	})

	t.Run("dropped push recovered", func(t *testing.T) {
		pts0, _, seq0, date := srv.State()
		c.drain()
		srv.DropPushes(1)
		srv.SendMessage(peer, "lost")
		srv.SendMessage(peer, "kept")
		u := c.next(t, nil)
		if seqOf(u) != seq0+2 {
			t.Fatalf("first push after the dropped one has seq %d, want %d", seqOf(u), seq0+2)
		}
		d, ok := diff(t, pts0, date+1, 0).(*tg.UpdatesDifference)
		if !ok {
			t.Fatalf("got %T", d)
		}
		texts := msgTexts(d.NewMessages)
		if len(texts) != 2 || texts[0] != "lost" || texts[1] != "kept" || d.State.Pts != pts0+2 || d.State.Seq != seq0+2 {
			t.Fatalf("difference messages %v state %+v", texts, d.State)
		}
	})

	t.Run("slice", func(t *testing.T) {
		pts0, _, _, date := srv.State()
		srv.OpenGap(5)
		pts := pts0
		var got, slices int
		for {
			switch d := diff(t, pts, date+1, 2).(type) {
			case *tg.UpdatesDifferenceSlice:
				slices++
				if len(d.NewMessages) != 2 || d.IntermediateState.Pts != pts+2 {
					t.Fatalf("slice from %d: %d messages, intermediate %+v", pts, len(d.NewMessages), d.IntermediateState)
				}
				got += len(d.NewMessages)
				pts = d.IntermediateState.Pts
				continue
			case *tg.UpdatesDifference:
				got += len(d.NewMessages)
				pts = d.State.Pts
			default:
				t.Fatalf("got %T", d)
			}
			break
		}
		if got != 5 || slices != 2 || pts != pts0+5 {
			t.Fatalf("%d messages in %d slices, final pts %d, want 5 in 2 slices to %d", got, slices, pts, pts0+5)
		}
	})

	t.Run("too long", func(t *testing.T) {
		pts0, _, _, date := srv.State()
		srv.OpenGap(TooLongGap + 1)
		d, ok := diff(t, pts0, date, 0).(*tg.UpdatesDifferenceTooLong)
		if !ok || d.Pts != pts0+TooLongGap+1 {
			t.Fatalf("got %#v, want differenceTooLong{pts %d}", d, pts0+TooLongGap+1)
		}
	})

	t.Run("client ahead of the server", func(t *testing.T) {
		pts, _, _, date := srv.State()
		d, ok := diff(t, pts+10, date, 0).(*tg.UpdatesDifferenceTooLong)
		if !ok || d.Pts != pts {
			t.Fatalf("got %#v, want differenceTooLong{pts %d}", d, pts)
		}
	})

	t.Run("phone call updates selected by date", func(t *testing.T) {
		pts0, _, _, date0 := srv.State()
		id, err := srv.IncomingCall(peer, false)
		if err != nil {
			t.Fatal(err)
		}
		hasCall := func(d tg.UpdatesDifferenceClass) bool {
			dd, ok := d.(*tg.UpdatesDifference)
			if !ok {
				return false
			}
			for _, u := range dd.OtherUpdates {
				if pc, ok := u.(*tg.UpdatePhoneCall); ok && pc.PhoneCall.GetID() == id {
					return true
				}
			}
			return false
		}
		if d := diff(t, pts0, date0, 0); !hasCall(d) {
			t.Fatalf("difference from the call's date lacks its updatePhoneCall: %#v", d)
		}
		sharedClock.Advance(time.Second)
		if d := diff(t, pts0, date0+1, 0); hasCall(d) {
			t.Fatalf("difference from a later date repeats the call: %#v", d)
		}
	})
}

func TestPushFaults(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("dave")
	c := startClient(t, srv, sharedStore)
	me := sessionOf(t, srv, c)

	mine := func(ps []sentPush) []int {
		var seqs []int
		for _, p := range ps {
			if p.session == me {
				seqs = append(seqs, p.seq)
			}
		}
		return seqs
	}
	tests := []struct {
		name  string
		setup func()
		reset func()
		// want: seq offsets (from the seq before) sent for two messages;
		// -1 is updatesTooLong.
		want []int
	}{
		{"plain", func() {}, func() {}, []int{1, 2}},
		{"duplicate", func() { srv.DuplicatePushes(true) }, func() { srv.DuplicatePushes(false) }, []int{1, 1, 2, 2}},
		{"reorder", func() { srv.ReorderPushes(true) }, func() { srv.ReorderPushes(false) }, []int{2, 1}},
		{"too long", srv.ForceTooLong, func() {}, []int{-1, 2}},
		{"drop", func() { srv.DropPushes(1) }, func() {}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, seq0, _ := srv.State()
			mark := srv.sentMark()
			c.drain()
			tt.setup()
			srv.SendMessage(peer, "one")
			srv.SendMessage(peer, "two")
			tt.reset()
			got := mine(srv.sentSince(mark))
			want := make([]int, len(tt.want))
			for i, w := range tt.want {
				want[i] = w
				if w > 0 {
					want[i] = seq0 + w
				}
			}
			if len(got) != len(want) {
				t.Fatalf("sent seqs %v, want %v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("sent seqs %v, want %v", got, want)
				}
			}
			// And the client really receives them.
			for range want {
				c.next(t, nil)
			}
		})
	}
}
