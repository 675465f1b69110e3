package sim

import (
	"go.uber.org/zap"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
)

// History limits.
const (
	// DefaultDifferenceLimit is how many pts events one getDifference
	// returns when the request has no pts_total_limit.
	DefaultDifferenceLimit = 100
	// TooLongGap is how far behind a client's pts may be before
	// getDifference answers differenceTooLong.
	TooLongGap = 1000
	// keepHistory is how many pts events the server keeps.
	keepHistory = 5000
	// keepDated is how many non-pts updates the server keeps (half of
	// them once past it): a getDifference that reaches further back misses
	// the older ones without a word, so it is above two per call of
	// bench/ab's largest burst (a call's requested and discarded).
	keepDated = 50000
)

// ptsEvent is one update of the common message box.
type ptsEvent struct {
	pts, count int
	date       int
	update     tg.UpdateClass
}

// datedUpdate is an update without pts (updatePhoneCall), which
// getDifference selects by date.
type datedUpdate struct {
	date   int
	update tg.UpdateClass
}

type heldPush struct {
	msg     tg.UpdatesClass
	exclude int64
}

// State returns the default account's update state.
func (s *Server) State() (pts, qts, seq, date int) { return s.Account().State() }

func (a *Account) tgStateLocked() tg.UpdatesState {
	return tg.UpdatesState{Pts: a.pts, Qts: a.qts, Seq: a.seq, Date: a.s.dateLocked()}
}

// addPtsLocked appends a pts event with pts_count 1 and returns it with
// its pts set.
func (a *Account) newMessageLocked(msg tg.MessageClass) *tg.UpdateNewMessage {
	st := a
	st.pts++
	u := &tg.UpdateNewMessage{Message: msg, Pts: st.pts, PtsCount: 1}
	st.history = append(st.history, ptsEvent{pts: st.pts, count: 1, date: a.s.dateLocked(), update: u})
	if len(st.history) > keepHistory {
		drop := len(st.history) - keepHistory/2
		st.ptsFloor = st.history[drop-1].pts
		st.history = append(st.history[:0:0], st.history[drop:]...)
	}
	return u
}

func (a *Account) nextMsgIDLocked() int {
	a.lastMsgID++
	return a.lastMsgID
}

// textMessageLocked creates a private text message event from `from` to
// the account (or from the account to `to` when from is the account).
func (a *Account) textMessageLocked(from, to int64, text string) *tg.UpdateNewMessage {
	m := &tg.Message{
		ID:      a.nextMsgIDLocked(),
		FromID:  &tg.PeerUser{UserID: from},
		PeerID:  &tg.PeerUser{UserID: from},
		Date:    a.s.dateLocked(),
		Message: text,
	}
	if from == a.id {
		m.Out = true
		m.PeerID = &tg.PeerUser{UserID: to}
	}
	return a.newMessageLocked(m)
}

// pushLocked wraps updates in an `updates` container with the next seq,
// stores non-pts updates for getDifference and sends the container to
// every session of the account except `exclude` (the caller of the RPC
// whose result it is). It returns the container.
func (a *Account) pushLocked(exclude int64, updates ...tg.UpdateClass) *tg.Updates {
	st := a
	date := a.s.dateLocked()
	for _, u := range updates {
		if _, ok := u.(*tg.UpdateNewMessage); ok {
			continue
		}
		st.dated = append(st.dated, datedUpdate{date: date, update: u})
	}
	if len(st.dated) > keepDated {
		st.dated = append(st.dated[:0:0], st.dated[len(st.dated)-keepDated/2:]...)
	}
	st.seq++
	c := &tg.Updates{
		Updates: updates,
		Users:   a.allUsersLocked(),
		Chats:   []tg.ChatClass{},
		Date:    date,
		Seq:     st.seq,
	}
	a.deliverLocked(c, exclude)
	return c
}

// deliverLocked applies the push faults and sends msg.
func (a *Account) deliverLocked(msg tg.UpdatesClass, exclude int64) {
	st := a
	if st.tooLong {
		st.tooLong = false
		msg = &tg.UpdatesTooLong{}
	}
	if st.drop > 0 {
		st.drop--
		return
	}
	if st.reorder {
		if st.held == nil {
			st.held = &heldPush{msg: msg, exclude: exclude}
			return
		}
		held := st.held
		st.held = nil
		a.sendAllLocked(msg, exclude)
		a.sendAllLocked(held.msg, held.exclude)
		return
	}
	a.sendAllLocked(msg, exclude)
	if st.dup {
		a.sendAllLocked(msg, exclude)
	}
}

// sendAllLocked sends msg to every live session of the account that
// receives updates. Sessions whose connection is gone are forgotten.
func (a *Account) sendAllLocked(msg tg.UpdatesClass, exclude int64) {
	s := a.s
	ctx := s.serverCtx()
	for id, si := range s.state.sessions {
		if id == exclude || !si.updates || s.accountOfLocked(si.sess.AuthKey.ID) != a {
			continue
		}
		if err := s.srv.Send(ctx, si.sess, tgtest.MessageFromServer, msg); err != nil {
			s.log.Debug("push failed, dropping session", zap.Int64("session", id), zap.Error(err))
			delete(s.state.sessions, id)
			continue
		}
		s.logSentLocked(id, msg)
	}
}

// sentPush is one container sent to one session (for tests).
type sentPush struct {
	session int64
	seq     int // -1 for updatesTooLong
}

func (s *Server) logSentLocked(session int64, msg tg.UpdatesClass) {
	seq := -1
	if u, ok := msg.(*tg.Updates); ok {
		seq = u.Seq
	}
	s.state.sent = append(s.state.sent, sentPush{session: session, seq: seq})
	if len(s.state.sent) > 1000 {
		s.state.sent = append(s.state.sent[:0:0], s.state.sent[500:]...)
		s.state.sentBase += 500
	}
}

// sentSince returns every container sent since mark (from sentMark), in
// send order, with the session it went to.
func (s *Server) sentSince(mark int) []sentPush {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := max(mark-s.state.sentBase, 0)
	if i > len(s.state.sent) {
		return nil
	}
	return append([]sentPush(nil), s.state.sent[i:]...)
}

func (s *Server) sentMark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.sentBase + len(s.state.sent)
}

// Push sends updates to the default account as one `updates` container (seq+1).
// Updates without pts are kept for getDifference; use SendMessage or
// OpenGap for pts events.
func (s *Server) Push(updates ...tg.UpdateClass) { s.Account().Push(updates...) }

// SendMessage makes user `from` send a text message to the default
// account: a pts event (updateNewMessage, pts_count 1) pushed in an
// `updates` container. It returns the new pts.
func (s *Server) SendMessage(from int64, text string) (pts int) {
	return s.Account().SendMessage(from, text)
}

// OpenGap makes n pts events (messages from the service user) happen
// server-side without pushing them; only getDifference returns them.
func (s *Server) OpenGap(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.state.accts[0]
	for i := 0; i < n; i++ {
		a.textMessageLocked(ServiceID, a.id, "gap")
	}
}

// DropPushes makes the next n pushed containers go to nobody (they stay in
// the history, so getDifference recovers them).
func (s *Server) DropPushes(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.accts[0].drop = n
}

// DuplicatePushes sends every pushed container twice while on.
func (s *Server) DuplicatePushes(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.accts[0].dup = on
}

// ReorderPushes, while on, holds each push and sends it right after the
// next one. Turning it off sends a push still held.
func (s *Server) ReorderPushes(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.state.accts[0]
	a.reorder = on
	if !on && a.held != nil {
		h := a.held
		a.held = nil
		a.sendAllLocked(h.msg, h.exclude)
	}
}

// ForceTooLong replaces the next pushed container with updatesTooLong.
func (s *Server) ForceTooLong() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.accts[0].tooLong = true
}

// differenceLocked answers updates.getDifference from the history.
func (a *Account) differenceLocked(req *tg.UpdatesGetDifferenceRequest) tg.UpdatesDifferenceClass {
	s, st := a.s, a
	// A client ahead of the server (a state saved against another sim
	// process) is as lost as one too far behind: it must re-fetch the state.
	if st.pts-req.Pts > TooLongGap || req.Pts < st.ptsFloor || req.Pts > st.pts {
		return &tg.UpdatesDifferenceTooLong{Pts: st.pts}
	}
	limit := DefaultDifferenceLimit
	if req.PtsTotalLimit > 0 && req.PtsTotalLimit < limit {
		limit = req.PtsTotalLimit
	}
	var (
		messages []tg.MessageClass
		others   []tg.UpdateClass
		lastPts  = req.Pts
		lastDate = req.Date
		count    int
		sliced   bool
	)
	for _, e := range st.history {
		if e.pts <= req.Pts {
			continue
		}
		if count == limit {
			sliced = true
			break
		}
		count++
		lastPts, lastDate = e.pts, e.date
		if nm, ok := e.update.(*tg.UpdateNewMessage); ok {
			messages = append(messages, nm.Message)
		} else {
			others = append(others, e.update)
		}
	}
	maxDate := s.dateLocked()
	if sliced {
		maxDate = lastDate
	}
	for _, d := range st.dated {
		if d.date >= req.Date && d.date <= maxDate {
			others = append(others, d.update)
		}
	}
	if len(messages) == 0 && len(others) == 0 {
		return &tg.UpdatesDifferenceEmpty{Date: s.dateLocked(), Seq: st.seq}
	}
	if messages == nil {
		messages = []tg.MessageClass{}
	}
	if others == nil {
		others = []tg.UpdateClass{}
	}
	if sliced {
		return &tg.UpdatesDifferenceSlice{
			NewMessages:          messages,
			NewEncryptedMessages: []tg.EncryptedMessageClass{},
			OtherUpdates:         others,
			Chats:                []tg.ChatClass{},
			Users:                a.allUsersLocked(),
			IntermediateState:    tg.UpdatesState{Pts: lastPts, Qts: st.qts, Date: lastDate, Seq: st.seq},
		}
	}
	return &tg.UpdatesDifference{
		NewMessages:          messages,
		NewEncryptedMessages: []tg.EncryptedMessageClass{},
		OtherUpdates:         others,
		Chats:                []tg.ChatClass{},
		Users:                a.allUsersLocked(),
		State:                a.tgStateLocked(),
	}
}
