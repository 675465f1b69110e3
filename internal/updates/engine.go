// Package updates owns calld's update sequence engine: the account's common
// pts, qts, seq and date, the gap buffers, getDifference bookkeeping
// (slices, tooLong, retries with backoff), the idle timer and the handling
// of our own RPC results. It replaces gotd's telegram/updates Manager.
//
// The Engine is pure and synchronous: no goroutines, no I/O, no clock of its
// own. Every method takes the current time and returns an Output saying what
// to dispatch (in order), which getDifference request to send, the new state
// to persist and when Tick must be called next. It is meant for one
// goroutine; it is not safe for concurrent use.
//
// Rules (core.telegram.org/api/updates, reference/updates.md):
//   - pts updates: local+pts_count == pts applies, > is a duplicate (also a
//     partial overlap) and is ignored, < is a gap; qts the same with count 1.
//   - updates/updatesCombined: pts and qts updates inside are handled first
//     and independently of seq; the rest waits on seq: seq_start == 0 applies
//     at once and seq is not stored; local+1 == seq_start applies and stores
//     seq and date; local+1 > seq_start is a duplicate; < is a gap.
//   - pts or qts of 0 dispatch the update and never touch the state.
//   - date never decreases. Short constructors (updateShort*, updateShort)
//     do not change date or seq.
//   - A gap waits GapTimeout (0.5 s) from the moment it opens; later updates
//     that do not move the local value do not extend it. Then
//     getDifference. An update that fills the hole while later ones stay
//     held (local moved, another hole is first now) restarts the wait
//     for the hole that is first now (no new Gap is reported): updates
//     handed over out of order in a long burst are a moving hole, not one
//     gap as old as the burst. The wait (and every other
//     timer) runs on input time: the clock stands still while the caller
//     says it is Busy working through inputs it already holds, and runs
//     again once it is Idle (waiting for input), so a busy caller never
//     mistakes its own backlog for a gap.
//   - While a getDifference is in flight, incoming Updates are held and
//     replayed, in arrival order, after the final difference; buffered gap
//     updates are re-checked against the new state. Nothing is lost and
//     nothing is applied twice.
//   - The difference's state is authoritative for pts, qts and seq (they
//     may move backwards only there); its date is merged with max.
//   - Channel updates (tg.IsChannelPtsUpdate, updateChannelTooLong) are not
//     tracked: they are dispatched as they come, never dropped.
package updates

import (
	"fmt"
	"slices"
	"time"

	"github.com/gotd/td/tg"
)

// Defaults for Options.
const (
	DefaultGapTimeout  = 500 * time.Millisecond
	DefaultIdleTimeout = 15 * time.Minute
	// DefaultMaxBuffered: in a 5,000-call burst gotd hands over one
	// discard's result (its seq) after more than 1,000 later ones, and
	// a cap of 1,000 fetched a difference in 4 bursts of 5; a held
	// container costs ~150 bytes beside its updates.
	DefaultMaxBuffered = 20000
)

// Box names used in Gap.
const (
	BoxPts = "pts"
	BoxQts = "qts"
	BoxSeq = "seq"
)

// State is the account's common update state. It converts directly to and
// from calld.UpdatesState (same fields, same order).
type State struct {
	Pts, Qts, Seq, Date int
}

// Options tune the engine. Zero values mean the defaults.
type Options struct {
	// GapTimeout is how long a gap may stay open before getDifference.
	GapTimeout time.Duration
	// IdleTimeout is how long without any update before getDifference.
	IdleTimeout time.Duration
	// Backoff returns the wait before retry number attempt (1, 2, ...) of
	// a failed getDifference. Default DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// PtsTotalLimit, when positive, is sent as pts_total_limit.
	PtsTotalLimit int
	// MaxBuffered bounds each gap buffer; beyond it getDifference is
	// requested at once.
	MaxBuffered int
}

// DefaultBackoff is 1 s, 2 s, 4 s, ... capped at 60 s.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 6 {
		return time.Minute
	}
	return min(time.Second<<(attempt-1), time.Minute)
}

// Dispatch is one update to hand to the handlers, with the users and chats
// that came with it.
type Dispatch struct {
	Update tg.UpdateClass
	Users  []tg.UserClass
	Chats  []tg.ChatClass
	// Own is true when the update came from the result of one of our RPCs.
	Own bool
}

// Gap reports that a sequence box found a hole: Local is the engine's value,
// Remote the value the arriving update would lead to (pts, qts or seq).
type Gap struct {
	Box    string
	Local  int
	Remote int
}

// DiffInfo describes a finished getDifference (all its slices and retries).
type DiffInfo struct {
	FromPts int
	ToPts   int
	Seq     int
	// Updates is how many updates the difference dispatched.
	Updates int
	// TooLong is set when the server answered differenceTooLong: the
	// updates between FromPts and the new pts were skipped for good.
	TooLong bool
}

// Output is what one engine call produced.
type Output struct {
	// Dispatch lists the updates to handle, in order.
	Dispatch []Dispatch
	// Request, when non-nil, must be sent now; its result goes to
	// Difference, its failure to DifferenceFailed. At most one is in
	// flight at any time.
	Request *tg.UpdatesGetDifferenceRequest
	// State is the engine state after the call; Changed tells whether it
	// differs from the state before the call (persist it, together with
	// the effects of Dispatch).
	State   State
	Changed bool
	// Gaps lists gaps opened by this call (one per box opening).
	Gaps []Gap
	// Diff is set when a getDifference finished in this call.
	Diff *DiffInfo
	// Rejected lists inputs refused as invalid (nothing applied).
	Rejected []error
	// Deadline is when Tick must be called next (at or after it); zero
	// means no timer (a getDifference is in flight).
	Deadline time.Time
}

type phase uint8

const (
	phaseIdle     phase = iota // no getDifference wanted
	phaseInFlight              // a request is out; inputs are held
	phaseRetry                 // the last request failed; retry at retryAt
)

// entry is one pts- or qts-bearing update waiting in a gap buffer.
type entry struct {
	d      Dispatch
	pts    int // pts or qts
	count  int
	silent bool // applied for bookkeeping, never dispatched
}

// heldSeq is the seq-gated part of a container waiting for a seq gap.
type heldSeq struct {
	seqStart, seq, date int
	others              []Dispatch
}

// heldInput is an input received while a getDifference was in flight.
type heldInput struct {
	u   tg.UpdatesClass
	own bool
	// affected is set for Affected(pts, count) inputs.
	affected         bool
	affPts, affCount int
}

type box struct {
	pending  heldQueue[entry]
	deadline time.Time
}

type diffChain struct {
	fromPts int
	updates int
	tooLong bool
}

// Engine is the sequence engine. Create it with New.
type Engine struct {
	opts Options
	st   State

	pts, qts box
	seqHeld  heldQueue[heldSeq]
	seqDL    time.Time

	phase   phase
	again   bool // another getDifference is wanted after the one in flight
	attempt int
	retryAt time.Time
	held    []heldInput
	chain   *diffChain

	lastActivity time.Time
	// overflow: a gap buffer outgrew MaxBuffered; getDifference is
	// requested once the current input is fully applied.
	overflow bool

	// The input clock: gap waits, the idle timeout and retries run on it.
	// It stops while the caller is busy (Busy .. Idle) working through
	// inputs it has already received, so its own backlog never reads as
	// time the server took to fill a gap.
	busy      bool
	busySince time.Time     // real time Busy was called
	paused    time.Duration // real time spent busy, before busySince

	out     *Output
	before  State
	realNow time.Time
}

// New returns an engine starting from s (the persisted state, or the result
// of updates.getState on a fresh account). It requests nothing by itself:
// call Start after a restart to catch up.
func New(s State, now time.Time, opts Options) *Engine {
	if opts.GapTimeout <= 0 {
		opts.GapTimeout = DefaultGapTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = DefaultMaxBuffered
	}
	return &Engine{opts: opts, st: s, lastActivity: now}
}

// State returns the current state.
func (e *Engine) State() State { return e.st }

// InFlight reports whether a getDifference request is outstanding.
func (e *Engine) InFlight() bool { return e.phase == phaseInFlight }

// Push handles Updates received from the server (socket, UpdateHandler).
func (e *Engine) Push(u tg.UpdatesClass, now time.Time) Output {
	now = e.begin(now)
	e.input(heldInput{u: u}, now)
	return e.finish(now)
}

// Own handles the Updates result of one of our RPCs (phone.discardCall,
// messages.sendMessage, ...). The rules are those of Push; dispatches are
// marked Own, and an updateShortSentMessage advances pts without being
// dispatched.
func (e *Engine) Own(u tg.UpdatesClass, now time.Time) Output {
	now = e.begin(now)
	e.input(heldInput{u: u, own: true}, now)
	return e.finish(now)
}

// Affected applies the pts of a messages.affectedMessages or
// messages.affectedHistory result (not an Updates type): bookkeeping only,
// like an own updateShortSentMessage.
func (e *Engine) Affected(pts, ptsCount int, now time.Time) Output {
	now = e.begin(now)
	e.input(heldInput{affected: true, own: true, affPts: pts, affCount: ptsCount}, now)
	return e.finish(now)
}

// Start is called once the engine runs again after a restart (state loaded
// from disk): it requests getDifference to catch up.
func (e *Engine) Start(now time.Time) Output {
	now = e.begin(now)
	e.request(now, true)
	return e.finish(now)
}

// Reconnected is called on a new MTProto session or a reconnect: updates
// may have been missed, so it requests getDifference (at once, even while a
// failed one waits for its retry; after the current one if one is in
// flight).
func (e *Engine) Reconnected(now time.Time) Output {
	now = e.begin(now)
	e.request(now, true)
	return e.finish(now)
}

// Tick fires the timers due at now: gap timeouts, the idle timeout and
// getDifference retries.
func (e *Engine) Tick(now time.Time) Output {
	now = e.begin(now)
	return e.finish(now)
}

// DifferenceFailed reports that the getDifference request failed. It is
// retried after Options.Backoff; inputs held meanwhile are processed now.
// A call without a request in flight is ignored.
func (e *Engine) DifferenceFailed(err error, now time.Time) Output {
	now = e.begin(now)
	if e.phase != phaseInFlight {
		return e.finish(now)
	}
	_ = err // the caller logs it; the engine only needs the fact
	e.fail(now)
	return e.finish(now)
}

func (e *Engine) fail(now time.Time) {
	e.phase = phaseRetry
	e.again = false
	e.attempt++
	e.retryAt = now.Add(e.opts.Backoff(e.attempt))
	e.replayHeld(now)
}

// Difference handles the result of the request in flight. A result without
// a request in flight is ignored. A malformed one (nil, negative state) is
// treated as a failure.
func (e *Engine) Difference(d tg.UpdatesDifferenceClass, now time.Time) Output {
	now = e.begin(now)
	if e.phase != phaseInFlight {
		return e.finish(now)
	}
	if err := validDifference(d); err != nil {
		e.out.Rejected = append(e.out.Rejected, err)
		e.fail(now)
		return e.finish(now)
	}
	e.lastActivity = now
	switch d := d.(type) {
	case *tg.UpdatesDifferenceEmpty:
		e.st.Seq = d.Seq
		e.st.Date = max(e.st.Date, d.Date)
		e.finishDifference(now)
	case *tg.UpdatesDifference:
		e.applyDifference(d.NewMessages, d.NewEncryptedMessages, d.OtherUpdates, d.Users, d.Chats, d.State)
		e.finishDifference(now)
	case *tg.UpdatesDifferenceSlice:
		e.applyDifference(d.NewMessages, d.NewEncryptedMessages, d.OtherUpdates, d.Users, d.Chats, d.IntermediateState)
		e.phase = phaseIdle
		e.issue()
	case *tg.UpdatesDifferenceTooLong:
		e.st.Pts = d.Pts
		e.chain.tooLong = true
		e.phase = phaseIdle
		e.issue()
	}
	return e.finish(now)
}

func validDifference(d tg.UpdatesDifferenceClass) error {
	bad := func(s tg.UpdatesState) bool {
		return s.Pts < 0 || s.Qts < 0 || s.Seq < 0 || s.Date < 0
	}
	switch d := d.(type) {
	case *tg.UpdatesDifferenceEmpty:
		if d.Seq < 0 || d.Date < 0 {
			return fmt.Errorf("updates.differenceEmpty: negative seq %d or date %d", d.Seq, d.Date)
		}
	case *tg.UpdatesDifference:
		if bad(d.State) {
			return fmt.Errorf("updates.difference: negative state %+v", d.State)
		}
	case *tg.UpdatesDifferenceSlice:
		if bad(d.IntermediateState) {
			return fmt.Errorf("updates.differenceSlice: negative intermediate state %+v", d.IntermediateState)
		}
	case *tg.UpdatesDifferenceTooLong:
		if d.Pts < 0 {
			return fmt.Errorf("updates.differenceTooLong: negative pts %d", d.Pts)
		}
	default:
		return fmt.Errorf("unexpected difference type %T", d)
	}
	return nil
}

// begin starts a call at real time now and returns the input time.
func (e *Engine) begin(now time.Time) time.Time {
	e.out = &Output{}
	e.before = e.st
	e.realNow = now
	return e.inputTime(now)
}

// inputTime is the input clock at real time now: real time minus the
// time spent busy; it stands still while busy.
func (e *Engine) inputTime(now time.Time) time.Time {
	if e.busy {
		return e.busySince.Add(-e.paused)
	}
	return now.Add(-e.paused)
}

// realTime is the real time at which the input clock reads t, if the
// caller goes idle at e.realNow.
func (e *Engine) realTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	t = t.Add(e.paused)
	if e.busy {
		t = t.Add(max(0, e.realNow.Sub(e.busySince)))
	}
	return t
}

func (e *Engine) finish(now time.Time) Output {
	if e.overflow {
		e.overflow = false
		e.request(now, false)
	}
	e.timers(now)
	out := *e.out
	e.out = nil
	out.State = e.st
	out.Changed = e.st != e.before
	out.Deadline = e.realTime(e.deadline())
	return out
}

// timers fires whatever is due at now.
func (e *Engine) timers(now time.Time) {
	switch e.phase {
	case phaseInFlight:
	case phaseRetry:
		if !now.Before(e.retryAt) {
			e.issue()
		}
	case phaseIdle:
		for _, dl := range []time.Time{e.pts.deadline, e.qts.deadline, e.seqDL} {
			if !dl.IsZero() && !now.Before(dl) {
				e.issue()
				return
			}
		}
		if !now.Before(e.lastActivity.Add(e.opts.IdleTimeout)) {
			e.issue()
		}
	}
}

func (e *Engine) deadline() time.Time {
	switch e.phase {
	case phaseInFlight:
		return time.Time{}
	case phaseRetry:
		return e.retryAt
	}
	dl := e.lastActivity.Add(e.opts.IdleTimeout)
	for _, d := range []time.Time{e.pts.deadline, e.qts.deadline, e.seqDL} {
		if !d.IsZero() && d.Before(dl) {
			dl = d
		}
	}
	return dl
}

// request asks for a getDifference. force skips a pending retry backoff.
func (e *Engine) request(now time.Time, force bool) {
	switch e.phase {
	case phaseInFlight:
		e.again = true
	case phaseRetry:
		if force {
			e.issue()
		}
	default:
		e.issue()
	}
}

// issue sends a getDifference from the current state.
func (e *Engine) issue() {
	e.phase = phaseInFlight
	e.again = false
	e.pts.deadline = time.Time{}
	e.qts.deadline = time.Time{}
	e.seqDL = time.Time{}
	if e.chain == nil {
		e.chain = &diffChain{fromPts: e.st.Pts}
	}
	req := &tg.UpdatesGetDifferenceRequest{Pts: e.st.Pts, Qts: e.st.Qts, Date: e.st.Date}
	if e.opts.PtsTotalLimit > 0 {
		req.SetPtsTotalLimit(e.opts.PtsTotalLimit)
	}
	e.out.Request = req
}

// input routes one input: held while a difference is in flight, otherwise
// applied.
func (e *Engine) input(in heldInput, now time.Time) {
	e.lastActivity = now
	if e.phase == phaseInFlight {
		e.held = append(e.held, in)
		return
	}
	if in.affected {
		if in.affPts < 0 || in.affCount < 0 || (in.affPts > 0 && in.affCount > in.affPts) {
			e.out.Rejected = append(e.out.Rejected,
				fmt.Errorf("affected messages: invalid pts %d pts_count %d", in.affPts, in.affCount))
			return
		}
		e.handlePts(entry{pts: in.affPts, count: in.affCount, silent: true, d: Dispatch{Own: true}}, now)
		return
	}
	own := in.own
	switch u := in.u.(type) {
	case *tg.UpdatesTooLong:
		e.request(now, false)
	case *tg.UpdateShortMessage:
		e.container(updatesContainer{ups: []tg.UpdateClass{shortMessage(u)}, own: own, short: true}, now)
	case *tg.UpdateShortChatMessage:
		e.container(updatesContainer{ups: []tg.UpdateClass{shortChatMessage(u)}, own: own, short: true}, now)
	case *tg.UpdateShort:
		if u.Update == nil {
			return
		}
		e.container(updatesContainer{ups: []tg.UpdateClass{u.Update}, date: u.Date, own: own, short: true}, now)
	case *tg.UpdateShortSentMessage:
		if !own {
			// Pushed by the server, which never happens for a send of
			// ours: its content is unknown, so fetch it (TDLib does).
			e.request(now, false)
			return
		}
		e.container(updatesContainer{ups: []tg.UpdateClass{shortSentMessage(u)}, date: u.Date, own: own, short: true, silent: true}, now)
	case *tg.UpdatesCombined:
		e.container(updatesContainer{ups: u.Updates, users: u.Users, chats: u.Chats, date: u.Date, seqStart: u.SeqStart, seq: u.Seq, own: own}, now)
	case *tg.Updates:
		e.container(updatesContainer{ups: u.Updates, users: u.Users, chats: u.Chats, date: u.Date, seqStart: u.Seq, seq: u.Seq, own: own}, now)
	default:
		// nil or an unknown constructor: nothing to apply.
	}
}

// updatesContainer is one Updates container as the engine applies it: a
// short constructor is one update without seq.
type updatesContainer struct {
	ups           []tg.UpdateClass
	users         []tg.UserClass
	chats         []tg.ChatClass
	date          int
	seqStart, seq int
	own           bool // the result of our own RPC
	short         bool // a short constructor: no date/seq change
	silent        bool // its pts updates are bookkeeping only
}

// containerParts are a container's updates sorted by how they apply.
type containerParts struct {
	pts, qts        []entry
	channel, others []Dispatch
	ptsChanged      bool // an updatePtsChanged: fetch the difference
}

// container applies one container.
func (e *Engine) container(c updatesContainer, now time.Time) {
	if err := validContainer(c.ups, c.date, c.seqStart, c.seq); err != nil {
		e.out.Rejected = append(e.out.Rejected, err)
		return
	}
	p := splitContainer(c)
	for _, en := range p.pts {
		e.handlePts(en, now)
	}
	for _, en := range p.qts {
		e.handleQts(en, now)
	}
	e.out.Dispatch = append(e.out.Dispatch, p.channel...)
	e.containerSeq(c, p.others, now)
	if p.ptsChanged {
		e.request(now, false)
	}
}

// splitContainer sorts c's updates into pts, qts, channel and other
// updates, each in the order they apply.
func splitContainer(c updatesContainer) containerParts {
	mk := func(u tg.UpdateClass) Dispatch {
		return Dispatch{Update: u, Users: c.users, Chats: c.chats, Own: c.own}
	}
	var p containerParts
	for _, u := range c.ups {
		if u == nil {
			continue
		}
		if _, ok := u.(*tg.UpdatePtsChanged); ok {
			p.ptsChanged = true
			continue
		}
		if pts, count, ok := tg.IsPtsUpdate(u); ok {
			p.pts = append(p.pts, entry{d: mk(u), pts: pts, count: count, silent: c.silent})
			continue
		}
		if qts, ok := tg.IsQtsUpdate(u); ok {
			p.qts = append(p.qts, entry{d: mk(u), pts: qts, count: 1})
			continue
		}
		if _, _, _, ok, _ := tg.IsChannelPtsUpdate(u); ok {
			p.channel = append(p.channel, mk(u))
			continue
		}
		p.others = append(p.others, mk(u))
	}
	// Lowest starting point first: a read and a new message with the same
	// pts apply in the right order.
	slices.SortStableFunc(p.pts, func(a, b entry) int { return (a.pts - a.count) - (b.pts - b.count) })
	slices.SortStableFunc(p.qts, func(a, b entry) int { return a.pts - b.pts })
	slices.SortStableFunc(p.channel, func(a, b Dispatch) int { return channelStart(a.Update) - channelStart(b.Update) })
	return p
}

// containerSeq applies c's seq and its other updates: at once without a
// seq, in order, or held until the gap before it is filled.
func (e *Engine) containerSeq(c updatesContainer, others []Dispatch, now time.Time) {
	switch {
	case c.seqStart == 0:
		e.out.Dispatch = append(e.out.Dispatch, others...)
		if !c.short {
			e.st.Date = max(e.st.Date, c.date)
		}
	case e.st.Seq+1 == c.seqStart:
		e.applySeq(heldSeq{seqStart: c.seqStart, seq: c.seq, date: c.date, others: others})
		e.drainSeq(now)
	case e.st.Seq+1 > c.seqStart:
		// Already applied.
	default:
		if e.seqHeld.Len() == 0 {
			e.out.Gaps = append(e.out.Gaps, Gap{Box: BoxSeq, Local: e.st.Seq, Remote: c.seq})
			e.seqDL = now.Add(e.opts.GapTimeout)
		}
		e.seqHeld.push(c.seqStart, heldSeq{seqStart: c.seqStart, seq: c.seq, date: c.date, others: others})
		if e.seqHeld.Len() > e.opts.MaxBuffered {
			e.overflow = true
		}
	}
}

func channelStart(u tg.UpdateClass) int {
	_, pts, count, _, _ := tg.IsChannelPtsUpdate(u)
	return pts - count
}

func validContainer(ups []tg.UpdateClass, date, seqStart, seq int) error {
	if seq < 0 || seqStart < 0 || date < 0 {
		return fmt.Errorf("container: negative seq_start %d, seq %d or date %d", seqStart, seq, date)
	}
	if seqStart > seq {
		return fmt.Errorf("container: seq_start %d > seq %d", seqStart, seq)
	}
	for _, u := range ups {
		if u == nil {
			continue
		}
		if pts, count, ok := tg.IsPtsUpdate(u); ok && (pts < 0 || count < 0 || (pts > 0 && count > pts)) {
			return fmt.Errorf("container: %s has invalid pts %d pts_count %d", u.TypeName(), pts, count)
		}
		if qts, ok := tg.IsQtsUpdate(u); ok && qts < 0 {
			return fmt.Errorf("container: %s has negative qts %d", u.TypeName(), qts)
		}
	}
	return nil
}

func (e *Engine) applySeq(h heldSeq) {
	e.out.Dispatch = append(e.out.Dispatch, h.others...)
	e.st.Seq = h.seq
	e.st.Date = max(e.st.Date, h.date)
}

// drainSeq applies held containers that now follow the local seq and drops
// those already covered; those still held wait for a new hole from now.
// They come out lowest seq_start first, so it stops at the first that
// does not follow.
func (e *Engine) drainSeq(now time.Time) {
	for e.seqHeld.Len() > 0 {
		h := e.seqHeld.peek()
		if e.st.Seq+1 < h.seqStart {
			break
		}
		if e.st.Seq+1 == h.seqStart {
			e.applySeq(h)
		} // else already covered
		e.seqHeld.pop()
	}
	if e.seqHeld.Len() == 0 {
		e.seqDL = time.Time{}
		return
	}
	e.seqDL = now.Add(e.opts.GapTimeout)
}

func (e *Engine) handlePts(en entry, now time.Time) {
	e.handleBox(&e.pts, &e.st.Pts, BoxPts, en, now)
}

func (e *Engine) handleQts(en entry, now time.Time) {
	en.count = 1
	e.handleBox(&e.qts, &e.st.Qts, BoxQts, en, now)
}

// handleBox applies the pts rule to one update of box b whose local value is
// *local.
func (e *Engine) handleBox(b *box, local *int, name string, en entry, now time.Time) {
	if en.pts == 0 {
		// No sequence number: apply, never touch the state.
		if !en.silent {
			e.out.Dispatch = append(e.out.Dispatch, en.d)
		}
		return
	}
	switch {
	case *local+en.count == en.pts:
		was := *local
		*local = en.pts
		if !en.silent {
			e.out.Dispatch = append(e.out.Dispatch, en.d)
		}
		e.drainBox(b, local, was, now)
	case *local+en.count > en.pts:
		// Duplicate or partial overlap: ignored (docs rule).
	default:
		if b.pending.Len() == 0 {
			e.out.Gaps = append(e.out.Gaps, Gap{Box: name, Local: *local, Remote: en.pts})
			b.deadline = now.Add(e.opts.GapTimeout)
		}
		b.pending.push(en.pts-en.count, en)
		if b.pending.Len() > e.opts.MaxBuffered {
			e.overflow = true
		}
	}
}

// drainBox applies held updates that now follow local. Those still held
// wait for a new hole from now if local moved past was (the hole the
// deadline was for is filled); an update of pts_count 0 moves nothing
// and leaves the deadline as it was.
func (e *Engine) drainBox(b *box, local *int, was int, now time.Time) {
	if b.pending.Len() == 0 {
		return
	}
	// Lowest start first: apply up to the first that does not follow (a
	// gap); those that start below local are duplicates or partial
	// overlaps, ignored.
	for b.pending.Len() > 0 {
		en := b.pending.peek()
		if *local+en.count < en.pts {
			break
		}
		if *local+en.count == en.pts {
			*local = en.pts
			if !en.silent {
				e.out.Dispatch = append(e.out.Dispatch, en.d)
			}
		}
		b.pending.pop()
	}
	if b.pending.Len() == 0 {
		b.deadline = time.Time{}
		return
	}
	if *local != was {
		b.deadline = now.Add(e.opts.GapTimeout)
	}
}

// applyDifference dispatches the content of a difference (or slice) and
// adopts its state. pts/qts updates of other_updates are kept only when they
// lie in (local, state]: anything else was applied already or is beyond
// what the server says it sent.
func (e *Engine) applyDifference(msgs []tg.MessageClass, enc []tg.EncryptedMessageClass, other []tg.UpdateClass,
	users []tg.UserClass, chats []tg.ChatClass, s tg.UpdatesState) {
	n := len(e.out.Dispatch)
	mk := func(u tg.UpdateClass) Dispatch { return Dispatch{Update: u, Users: users, Chats: chats} }
	for _, m := range msgs {
		if m == nil {
			continue
		}
		e.out.Dispatch = append(e.out.Dispatch, mk(&tg.UpdateNewMessage{Message: m}))
	}
	for _, m := range enc {
		if m == nil {
			continue
		}
		e.out.Dispatch = append(e.out.Dispatch, mk(&tg.UpdateNewEncryptedMessage{Message: m}))
	}
	var seenPts, seenQts map[int]bool
	for _, u := range other {
		if u == nil {
			continue
		}
		if _, ok := u.(*tg.UpdatePtsChanged); ok {
			e.again = true
			continue
		}
		if pts, count, ok := tg.IsPtsUpdate(u); ok && pts != 0 {
			if pts > s.Pts || pts < e.st.Pts || (count > 0 && pts == e.st.Pts) || (count > 0 && seenPts[pts]) {
				continue
			}
			if count > 0 {
				if seenPts == nil {
					seenPts = map[int]bool{}
				}
				seenPts[pts] = true
			}
		}
		if qts, ok := tg.IsQtsUpdate(u); ok && qts != 0 {
			if qts > s.Qts || qts <= e.st.Qts || seenQts[qts] {
				continue
			}
			if seenQts == nil {
				seenQts = map[int]bool{}
			}
			seenQts[qts] = true
		}
		e.out.Dispatch = append(e.out.Dispatch, mk(u))
	}
	e.chain.updates += len(e.out.Dispatch) - n
	e.st.Pts, e.st.Qts, e.st.Seq = s.Pts, s.Qts, s.Seq
	e.st.Date = max(e.st.Date, s.Date)
}

// finishDifference ends a getDifference chain: report it, re-check what
// waited in the gap buffers against the new state, replay the held inputs.
func (e *Engine) finishDifference(now time.Time) {
	e.phase = phaseIdle
	e.attempt = 0
	e.out.Diff = &DiffInfo{
		FromPts: e.chain.fromPts, ToPts: e.st.Pts, Seq: e.st.Seq,
		Updates: e.chain.updates, TooLong: e.chain.tooLong,
	}
	e.chain = nil
	again := e.again
	e.again = false

	// Each comes out lowest start first, ties in arrival order.
	ptsBuf, qtsBuf := e.pts.pending.drain(), e.qts.pending.drain()
	e.pts, e.qts = box{}, box{}
	for _, en := range ptsBuf {
		e.handlePts(en, now)
	}
	for _, en := range qtsBuf {
		e.handleQts(en, now)
	}
	// The held containers against the difference's seq: those covered
	// are dropped, those that follow applied; any left wait for a new
	// gap from now.
	e.drainSeq(now)
	if e.seqHeld.Len() > 0 {
		e.out.Gaps = append(e.out.Gaps, Gap{Box: BoxSeq, Local: e.st.Seq, Remote: e.seqHeld.peek().seq})
	}
	e.replayHeld(now)
	if again {
		e.request(now, false)
	}
}

// replayHeld processes, in arrival order, the inputs held while a request
// was in flight. An input that triggers a new request makes the rest wait
// again.
func (e *Engine) replayHeld(now time.Time) {
	held := e.held
	e.held = nil
	for _, in := range held {
		e.input(in, now)
	}
}

// Busy tells the engine its caller is working through inputs it has
// already received (a backlog): until Idle the input clock stops.
func (e *Engine) Busy(now time.Time) {
	if !e.busy {
		e.busy, e.busySince = true, now
	}
}

// Idle tells the engine its caller has handed over every input it had and
// now waits for more: the input clock runs again. It fires the timers due
// and its Deadline is the real time Tick must be called next.
func (e *Engine) Idle(now time.Time) Output {
	if e.busy {
		e.paused += max(0, now.Sub(e.busySince))
		e.busy = false
	}
	now = e.begin(now)
	return e.finish(now)
}
