package updates

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gotd/td/tg"
)

// t0 is the fake clock's origin; every test computes "now" from it.
var t0 = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

// base is the starting state of reference/updates.md §4.
var base = State{Pts: 100, Qts: 50, Seq: 10, Date: 1000}

const peerUser = 7

func message(id int) *tg.Message {
	return &tg.Message{ID: id, PeerID: &tg.PeerUser{UserID: peerUser}, Message: fmt.Sprintf("m%d", id)}
}

func newMsg(pts, count int) *tg.UpdateNewMessage {
	return &tg.UpdateNewMessage{Message: message(pts), Pts: pts, PtsCount: count}
}

func shortMsg(pts int) *tg.UpdateShortMessage {
	return &tg.UpdateShortMessage{ID: pts, UserID: peerUser, Message: fmt.Sprintf("m%d", pts), Pts: pts, PtsCount: 1, Date: 1000}
}

func del(pts, count int) *tg.UpdateDeleteMessages {
	ids := make([]int, count)
	for i := range ids {
		ids[i] = pts - i
	}
	return &tg.UpdateDeleteMessages{Messages: ids, Pts: pts, PtsCount: count}
}

func edit(pts int) *tg.UpdateEditMessage {
	return &tg.UpdateEditMessage{Message: message(pts), Pts: pts, PtsCount: 1}
}

func enc(qts int) *tg.UpdateNewEncryptedMessage {
	return &tg.UpdateNewEncryptedMessage{Message: &tg.EncryptedMessage{RandomID: int64(qts)}, Qts: qts}
}

func call(id int64) *tg.UpdatePhoneCall {
	return &tg.UpdatePhoneCall{PhoneCall: &tg.PhoneCallDiscarded{ID: id}}
}

func chanMsg(channel int64, pts, count int) *tg.UpdateNewChannelMessage {
	return &tg.UpdateNewChannelMessage{
		Message: &tg.Message{ID: pts, PeerID: &tg.PeerChannel{ChannelID: channel}},
		Pts:     pts, PtsCount: count,
	}
}

func chanRead(channel int64, pts int) *tg.UpdateReadChannelInbox {
	return &tg.UpdateReadChannelInbox{ChannelID: channel, MaxID: pts, Pts: pts}
}

func short(u tg.UpdateClass) *tg.UpdateShort { return &tg.UpdateShort{Update: u, Date: 1000} }

func ups(seq, date int, u ...tg.UpdateClass) *tg.Updates {
	return &tg.Updates{Updates: u, Seq: seq, Date: date}
}

func combined(seqStart, seq, date int, u ...tg.UpdateClass) *tg.UpdatesCombined {
	return &tg.UpdatesCombined{Updates: u, SeqStart: seqStart, Seq: seq, Date: date}
}

// msgs returns messages with ids from..to (as getDifference returns them).
func msgs(from, to int) []tg.MessageClass {
	var out []tg.MessageClass
	for id := from; id <= to; id++ {
		out = append(out, message(id))
	}
	return out
}

// names returns the describe() names for messages from..to.
func names(from, to int) []string {
	var out []string
	for id := from; id <= to; id++ {
		out = append(out, fmt.Sprintf("msg%d", id))
	}
	return out
}

func ustate(pts, qts, seq, date int) tg.UpdatesState {
	return tg.UpdatesState{Pts: pts, Qts: qts, Seq: seq, Date: date}
}

// describe names a dispatched update for comparisons; "!" marks Own.
func describe(d Dispatch) string {
	var s string
	switch u := d.Update.(type) {
	case *tg.UpdateNewMessage:
		s = fmt.Sprintf("msg%d", u.Message.GetID())
	case *tg.UpdateEditMessage:
		s = fmt.Sprintf("edit%d", u.Message.GetID())
	case *tg.UpdateDeleteMessages:
		s = fmt.Sprintf("del%d", u.Pts)
	case *tg.UpdateNewEncryptedMessage:
		s = fmt.Sprintf("enc%d", u.Message.GetRandomID())
	case *tg.UpdatePhoneCall:
		s = fmt.Sprintf("call%d", u.PhoneCall.GetID())
	case *tg.UpdateNewChannelMessage:
		s = fmt.Sprintf("chmsg%d", u.Message.GetID())
	case *tg.UpdateReadChannelInbox:
		s = fmt.Sprintf("chread%d", u.Pts)
	case *tg.UpdateChannelParticipant:
		s = fmt.Sprintf("chpart%d", u.Qts)
	case nil:
		s = "<nil>"
	default:
		s = u.TypeName()
	}
	if d.Own {
		s += "!"
	}
	return s
}

func describeAll(ds []Dispatch) []string {
	var out []string
	for _, d := range ds {
		out = append(out, describe(d))
	}
	return out
}

func describeReq(r *tg.UpdatesGetDifferenceRequest) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("GD(%d,%d,%d)", r.Pts, r.Qts, r.Date)
}

var errRPC = errors.New("rpc error: 500 INTERNAL")

// input is one scenario step's call; answer marks calls that answer the
// request in flight (Difference, DifferenceFailed).
type input struct {
	fn     func(e *Engine, now time.Time) Output
	answer bool
}

func push(u tg.UpdatesClass) input {
	return input{fn: func(e *Engine, now time.Time) Output { return e.Push(u, now) }}
}

func own(u tg.UpdatesClass) input {
	return input{fn: func(e *Engine, now time.Time) Output { return e.Own(u, now) }}
}

func diff(d tg.UpdatesDifferenceClass) input {
	return input{fn: func(e *Engine, now time.Time) Output { return e.Difference(d, now) }, answer: true}
}

func affected(pts, count int) input {
	return input{fn: func(e *Engine, now time.Time) Output { return e.Affected(pts, count, now) }}
}

var (
	tick        = input{fn: (*Engine).Tick}
	start       = input{fn: (*Engine).Start}
	reconnected = input{fn: (*Engine).Reconnected}
	failed      = input{fn: func(e *Engine, now time.Time) Output { return e.DifferenceFailed(errRPC, now) }, answer: true}
)

func eqStrings(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}
