package updates

import (
	"reflect"
	"testing"
	"time"

	"github.com/gotd/td/tg"
)

// TestClassifiersCoverLayer checks, over every Update constructor of the
// layer gotd v0.93.0 was generated for, that each one with a pts or qts
// field is classified by tg.IsPtsUpdate, tg.IsQtsUpdate or
// tg.IsChannelPtsUpdate, so the engine never mistakes a sequenced update
// for a seq-gated one.
func TestClassifiersCoverLayer(t *testing.T) {
	checked := 0
	for _, ctor := range tg.TypesConstructorMap() {
		u, ok := ctor().(tg.UpdateClass)
		if !ok {
			continue
		}
		v := reflect.ValueOf(u).Elem()
		setInt := func(name string, x int) bool {
			f := v.FieldByName(name)
			if !f.IsValid() || f.Kind() != reflect.Int {
				return false
			}
			f.SetInt(int64(x))
			return true
		}
		hasPts := setInt("Pts", 7)
		hasQts := setInt("Qts", 9)
		if !hasPts && !hasQts {
			continue
		}
		checked++
		_, _, isPts := tg.IsPtsUpdate(u)
		_, isQts := tg.IsQtsUpdate(u)
		_, _, _, isChan, _ := tg.IsChannelPtsUpdate(u)
		if hasPts && !isPts && !isChan {
			t.Errorf("%s has pts but no classifier claims it", u.TypeName())
		}
		if hasQts && !isQts {
			t.Errorf("%s has qts but IsQtsUpdate does not claim it", u.TypeName())
		}
	}
	if checked < 20 {
		t.Fatalf("only %d pts/qts update types found; the scan is broken", checked)
	}
}

func TestEngineEdges(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		steps []step
		want  State
	}{
		{name: "gap buffer overflow requests at once", opts: Options{MaxBuffered: 2}, steps: []step{
			{do: push(short(newMsg(105, 1)))},
			{do: push(short(newMsg(106, 1)))},
			{do: push(short(newMsg(107, 1))), req: "GD(100,50,1000)"},
		}, want: base},
		{name: "pushed updateShortSentMessage is fetched, not applied", steps: []step{
			{do: push(&tg.UpdateShortSentMessage{ID: 101, Pts: 101, PtsCount: 1}), req: "GD(100,50,1000)"},
			{do: diff(&tg.UpdatesDifference{NewMessages: msgs(101, 101), State: ustate(101, 50, 10, 1000)}), disp: []string{"msg101"}},
		}, want: *st(101, 50, 10, 1000)},
		{name: "difference without a request is ignored", steps: []step{
			{do: diff(&tg.UpdatesDifference{NewMessages: msgs(101, 101), State: ustate(101, 50, 10, 1000)})},
		}, want: base},
		{name: "malformed difference counts as a failure", steps: []step{
			{do: start, req: "GD(100,50,1000)"},
			{at: 10 * ms, do: diff(&tg.UpdatesDifference{State: ustate(-1, 50, 10, 1000)}),
				check: both(wantRejected(1), wantDeadline(1010*ms))},
			{at: 1010 * ms, do: tick, req: "GD(100,50,1000)"},
		}, want: base},
		{name: "reconnect during backoff retries at once", steps: []step{
			{do: start, req: "GD(100,50,1000)"},
			{at: 10 * ms, do: failed},
			{at: 20 * ms, do: reconnected, req: "GD(100,50,1000)"},
		}, want: base},
		{name: "reconnect while in flight asks again after it", steps: []step{
			{do: start, req: "GD(100,50,1000)"},
			{at: 10 * ms, do: reconnected},
			{at: 20 * ms, do: diff(&tg.UpdatesDifferenceEmpty{Date: 1001, Seq: 10}), req: "GD(100,50,1001)"},
		}, want: *st(100, 50, 10, 1001)},
		{name: "updatesTooLong held while in flight", steps: []step{
			{do: start, req: "GD(100,50,1000)"},
			{at: 10 * ms, do: push(shortMsg(101))},
			{at: 20 * ms, do: push(&tg.UpdatesTooLong{})},
			{at: 30 * ms, do: push(shortMsg(102))},
			{at: 40 * ms, do: diff(&tg.UpdatesDifferenceEmpty{Date: 1000, Seq: 10}), disp: []string{"msg101"}, req: "GD(101,50,1000)"},
			{at: 50 * ms, do: diff(&tg.UpdatesDifferenceEmpty{Date: 1000, Seq: 10}), disp: []string{"msg102"}},
		}, want: *st(102, 50, 10, 1000)},
		{name: "pts_total_limit is sent when set", opts: Options{PtsTotalLimit: 1000}, steps: []step{
			{do: start, req: "GD(100,50,1000)", check: func(t *testing.T, o Output) {
				if v, ok := o.Request.GetPtsTotalLimit(); !ok || v != 1000 {
					t.Errorf("pts_total_limit = %d, %v", v, ok)
				}
			}},
		}, want: base},
		{name: "difference drops pts updates already applied or beyond its state", steps: []step{
			{do: push(shortMsg(101)), disp: []string{"msg101"}},
			{do: push(&tg.UpdatesTooLong{}), req: "GD(101,50,1000)"},
			{do: diff(&tg.UpdatesDifference{OtherUpdates: []tg.UpdateClass{edit(101), edit(102), edit(102), edit(104), enc(50), enc(51)},
				State: ustate(102, 51, 10, 1000)}), disp: []string{"edit102", "enc51"}},
		}, want: *st(102, 51, 10, 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(base, t0, tt.opts)
			for i, stp := range tt.steps {
				o := stp.do.fn(e, t0.Add(stp.at))
				if got := describeAll(o.Dispatch); !eqStrings(got, stp.disp) {
					t.Errorf("step %d: dispatched %v, want %v", i, got, stp.disp)
				}
				if got := describeReq(o.Request); got != stp.req {
					t.Errorf("step %d: request %q, want %q", i, got, stp.req)
				}
				if stp.check != nil {
					stp.check(t, o)
				}
			}
			if got := e.State(); got != tt.want {
				t.Errorf("state %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := DefaultBackoff(i + 1); got != w {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w)
		}
	}
	if got := DefaultBackoff(1000); got != time.Minute {
		t.Errorf("attempt 1000: %v", got)
	}
}

func TestShortConversions(t *testing.T) {
	tests := []struct {
		name     string
		in       tg.UpdatesClass
		wantPeer tg.PeerClass
		wantFrom tg.PeerClass
	}{
		{"incoming private", &tg.UpdateShortMessage{ID: 5, UserID: 42, Message: "hi", Pts: 101, PtsCount: 1, Date: 1001},
			&tg.PeerUser{UserID: 42}, &tg.PeerUser{UserID: 42}},
		{"outgoing private", &tg.UpdateShortMessage{Out: true, ID: 5, UserID: 42, Message: "hi", Pts: 101, PtsCount: 1, Date: 1001},
			&tg.PeerUser{UserID: 42}, nil},
		{"group", &tg.UpdateShortChatMessage{ID: 5, FromID: 42, ChatID: 9, Message: "hi", Pts: 101, PtsCount: 1, Date: 1001},
			&tg.PeerChat{ChatID: 9}, &tg.PeerUser{UserID: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := New(base, t0, Options{}).Push(tt.in, t0)
			if len(o.Dispatch) != 1 {
				t.Fatalf("dispatched %v", describeAll(o.Dispatch))
			}
			u, ok := o.Dispatch[0].Update.(*tg.UpdateNewMessage)
			if !ok || u.Pts != 101 || u.PtsCount != 1 {
				t.Fatalf("got %#v", o.Dispatch[0].Update)
			}
			m := u.Message.(*tg.Message)
			from, _ := m.GetFromID()
			if m.ID != 5 || m.Message != "hi" || m.Date != 1001 || !reflect.DeepEqual(m.PeerID, tt.wantPeer) || !reflect.DeepEqual(from, tt.wantFrom) {
				t.Errorf("message %+v (from %v)", m, from)
			}
			if o.State.Date != base.Date {
				t.Errorf("a short update moved date to %d", o.State.Date)
			}
		})
	}
}
