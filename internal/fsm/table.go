package fsm

import (
	"fmt"
	"strings"

	lfsm "github.com/looplab/fsm"

	"github.com/calld/calld"
)

// Event names of the transition table.
const (
	EvAcknowledge     = "acknowledge"
	EvAccept          = "accept"
	EvAcceptDone      = "accept_done"
	EvRequestSent     = "request_sent"
	EvDelivered       = "delivered"
	EvPeerAccepted    = "peer_accepted"
	EvConfirmSent     = "confirm_sent"
	EvConnected       = "connected"
	EvSetConnection   = "set_connection"
	EvDeferHangup     = "defer_hangup"
	EvDeferredDiscard = "deferred_discard"
	EvHangupExpired   = "hangup_expired"
	EvDiscard         = "discard"
	EvResend          = "resend"
	EvDiscarded       = "discarded"
	EvDiscardDone     = "discard_done"
	EvAborted         = "aborted"
)

// Row is one line of the transition table: Event moves a call from any of
// Src to Dst. Dir, when set, restricts the event to one direction. On and
// Does document the triggering inputs and the effects.
type Row struct {
	Event string
	Src   []calld.State
	Dst   calld.State
	Dir   calld.Direction
	On    string
	Does  string
}

// live lists every state but Ended, in lifecycle order.
var live = []calld.State{calld.StateRequesting, calld.StateWaiting, calld.StateRinging, calld.StateAccepting, calld.StateExchangingKeys, calld.StateActive, calld.StateHangingUp}

// States lists every state in lifecycle order.
var States = append(append([]calld.State(nil), live...), calld.StateEnded)

// table is THE transition table: the looplab machine is built from it and
// docs/fsm.md is generated from it.
var table = []Row{
	{EvRequestSent, []calld.State{calld.StateRequesting}, calld.StateWaiting, calld.DirectionOutgoing,
		"phoneCallWaiting without receive_date (the requestCall result)",
		"learn id, access_hash, date; receive deadline"},
	{EvDelivered, []calld.State{calld.StateRequesting, calld.StateWaiting}, calld.StateRinging, calld.DirectionOutgoing,
		"phoneCallWaiting with receive_date",
		"ringing_at; ring deadline"},
	{EvPeerAccepted, []calld.State{calld.StateRequesting, calld.StateWaiting, calld.StateRinging}, calld.StateExchangingKeys, calld.DirectionOutgoing,
		"phoneCallAccepted",
		"SendConfirm; receive deadline"},
	{EvConfirmSent, []calld.State{calld.StateExchangingKeys}, calld.StateExchangingKeys, calld.DirectionOutgoing,
		"Local Confirm",
		"receive deadline restarted"},
	{EvAcknowledge, []calld.State{calld.StateWaiting}, calld.StateRinging, calld.DirectionIncoming,
		"Local Acknowledge or receivedCall ok",
		"ringing_at; ring deadline"},
	{EvAccept, []calld.State{calld.StateRinging}, calld.StateAccepting, calld.DirectionIncoming,
		"Local Accept",
		"SendAccept; receive deadline"},
	{EvAcceptDone, []calld.State{calld.StateAccepting}, calld.StateExchangingKeys, calld.DirectionIncoming,
		"acceptCall ok, phoneCallWaiting or phoneCallAccepted",
		"receive deadline"},
	{EvConnected, []calld.State{calld.StateAccepting, calld.StateExchangingKeys}, calld.StateActive, "",
		"phoneCall",
		"active_at; connections; max_duration deadline if set"},
	{EvSetConnection, []calld.State{calld.StateActive}, calld.StateActive, "",
		"Local SetConnection (an id among the connections)",
		"connection_id"},
	{EvDeferHangup, []calld.State{calld.StateRequesting}, calld.StateRequesting, calld.DirectionOutgoing,
		"Local Discard or Fail, receive timer (no id yet)",
		"hang-up pending (reason decided now); hangup watchdog; no RPC"},
	{EvDeferredDiscard, []calld.State{calld.StateRequesting}, calld.StateHangingUp, calld.DirectionOutgoing,
		"phoneCallWaiting or phoneCallAccepted while a hang-up is pending",
		"SendDiscard (pending reason)"},
	{EvHangupExpired, []calld.State{calld.StateRequesting}, calld.StateEnded, calld.DirectionOutgoing,
		"hangup watchdog, still no id",
		"ended (pending ended_by), no RPC"},
	{EvDiscard, []calld.State{calld.StateWaiting, calld.StateRinging, calld.StateAccepting, calld.StateExchangingKeys, calld.StateActive}, calld.StateHangingUp, "",
		"Local Discard, Decline or Fail; a timer; an identity mismatch; acceptCall or confirmCall failed",
		"SendDiscard (reason, duration, connection_id, video decided now)"},
	{EvResend, []calld.State{calld.StateHangingUp}, calld.StateHangingUp, "",
		"Local Resend, once, on a machine restored in hanging_up or after its discard timed out (no answer recorded)",
		"SendDiscard again, same values"},
	{EvDiscarded, live, calld.StateEnded, "",
		"phoneCallDiscarded or phoneCallEmpty",
		"ended: remote, other_device, or our pending ended_by if hanging_up; no RPC"},
	{EvDiscardDone, []calld.State{calld.StateHangingUp}, calld.StateEnded, "",
		"discardCall result (ok or error)",
		"ended: pending ended_by, or per the error"},
	{EvAborted, []calld.State{calld.StateRequesting, calld.StateWaiting, calld.StateAccepting, calld.StateExchangingKeys}, calld.StateEnded, "",
		"requestCall error; receivedCall error; acceptCall or confirmCall CALL_ALREADY_DECLINED / CALL_ALREADY_ACCEPTED",
		"ended without any RPC"},
}

// Table returns a copy of the transition table.
func Table() []Row {
	out := make([]Row, len(table))
	for i, r := range table {
		r.Src = append([]calld.State(nil), r.Src...)
		out[i] = r
	}
	return out
}

// eventDir maps each event to its direction restriction ("" = both).
var eventDir = func() map[string]calld.Direction {
	m := make(map[string]calld.Direction, len(table))
	for _, r := range table {
		m[r.Event] = r.Dir
	}
	return m
}()

// lfsmEvents is the table in looplab's form.
func lfsmEvents() lfsm.Events {
	evs := make(lfsm.Events, 0, len(table))
	for _, r := range table {
		src := make([]string, len(r.Src))
		for i, s := range r.Src {
			src[i] = string(s)
		}
		evs = append(evs, lfsm.EventDesc{Name: r.Event, Src: src, Dst: string(r.Dst)})
	}
	return evs
}

// newLFSM builds a looplab machine at initial, with the given callbacks.
func newLFSM(initial calld.State, cbs lfsm.Callbacks) *lfsm.FSM {
	return lfsm.NewFSM(string(initial), lfsmEvents(), cbs)
}

// Visualize is looplab's own Mermaid rendering of the table (sorted by
// source state and event, so deterministic), from the given initial state.
func Visualize(initial calld.State) (string, error) {
	return lfsm.VisualizeWithType(newLFSM(initial, nil), lfsm.MermaidStateDiagram)
}

// Diagram renders the table as a Mermaid state diagram, in table order,
// with both entry points and the terminal state.
func Diagram() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	b.WriteString("    [*] --> requesting: NewOutgoing\n")
	b.WriteString("    [*] --> waiting: NewIncoming\n")
	for _, r := range table {
		for _, s := range r.Src {
			fmt.Fprintf(&b, "    %s --> %s: %s\n", s, r.Dst, r.Event)
		}
	}
	b.WriteString("    ended --> [*]\n")
	return b.String()
}

// TableMarkdown renders the table as a Markdown table.
func TableMarkdown() string {
	var b strings.Builder
	b.WriteString("| event | from | to | direction | on | does |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range table {
		src := make([]string, len(r.Src))
		for i, s := range r.Src {
			src[i] = string(s)
		}
		dir := string(r.Dir)
		if dir == "" {
			dir = "both"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n",
			r.Event, strings.Join(src, ", "), r.Dst, dir, r.On, r.Does)
	}
	return b.String()
}

// ReasonMarkdown renders what DiscardReason decides, with no explicit
// reason requested, for each direction, live state and cause.
func ReasonMarkdown() string {
	causes := []Cause{CauseDiscard, CauseDecline, CauseFail, CauseTimeout, CauseMaxDuration, CauseRestart}
	var b strings.Builder
	b.WriteString("| direction | state |")
	for _, c := range causes {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|---|")
	for range causes {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, dir := range []calld.Direction{calld.DirectionOutgoing, calld.DirectionIncoming} {
		for _, s := range live {
			if !stateOf(dir, s) || s == calld.StateHangingUp {
				continue
			}
			c := calld.Call{Direction: dir, State: s}
			fmt.Fprintf(&b, "| %s | %s |", dir, s)
			for _, cause := range causes {
				fmt.Fprintf(&b, " %s |", DiscardReason(c, calld.ReasonNone, cause))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// stateOf reports whether a call of direction dir can be in state s.
func stateOf(dir calld.Direction, s calld.State) bool {
	switch s {
	case calld.StateRequesting:
		return dir == calld.DirectionOutgoing
	case calld.StateAccepting:
		return dir == calld.DirectionIncoming
	}
	return true
}
