// Package reliability owns calld's reliability tests: load through the
// simulated Telegram, faults injected during load (connection cuts,
// FLOOD_WAIT storms, CALL_OCCUPY_FAILED, a full disk under the state file,
// the simulator restarted without its auth keys, kill -9 of the daemon
// process) and bad input on the control socket (1000 concurrent clients,
// slow clients). Each test checks that nothing is lost: every call ends in
// the store, the journal is a gap-free sequence of per-call chains, and the
// daemon's updates state equals the simulator's.
//
// The default sizes fit `go test -race ./...`; CALLD_RELIABILITY=full runs
// the large ones (10k calls, 100 kills). See docs/reliability.md.
//
// This file holds the journal checker the tests share.
package reliability

import (
	"fmt"

	"github.com/calld/calld"
)

// JournalReport summarises a checked journal.
type JournalReport struct {
	Events int
	Calls  int
	Ended  int
	// Unnamed counts the events of outgoing calls that ended before the
	// server named them (call_id 0): they have no chain to check.
	Unnamed int
	// Live lists the calls whose chain does not end in "ended".
	Live []int64
}

// CheckJournal checks a whole journal (events in seq order, starting at
// seq 1): the seq numbers are gap-free and increasing; every call's events
// form one chain "" -> s1 -> s2 ... in which each event starts where the
// previous one ended; nothing follows "ended". It does not require every
// call to have ended: see JournalReport.Live.
func CheckJournal(events []calld.Event) (JournalReport, error) {
	var r JournalReport
	last := map[int64]string{}
	order := []int64{}
	for i, ev := range events {
		if want := uint64(i + 1); ev.Seq != want {
			return r, fmt.Errorf("journal: event %d has seq %d, want %d (gap or repeat)", i, ev.Seq, want)
		}
		if ev.CallID == 0 {
			r.Unnamed++
			continue
		}
		prev, seen := last[ev.CallID]
		if !seen {
			order = append(order, ev.CallID)
			if ev.From != "" {
				return r, fmt.Errorf("journal: seq %d: call %d starts from %q, want \"\"", ev.Seq, ev.CallID, ev.From)
			}
		} else {
			if prev == string(calld.StateEnded) {
				return r, fmt.Errorf("journal: seq %d: call %d has an event after ended (%s -> %s)", ev.Seq, ev.CallID, ev.From, ev.To)
			}
			if ev.From != prev {
				return r, fmt.Errorf("journal: seq %d: call %d goes %s -> %s but was %s", ev.Seq, ev.CallID, ev.From, ev.To, prev)
			}
		}
		if ev.To == "" {
			return r, fmt.Errorf("journal: seq %d: call %d has no target state", ev.Seq, ev.CallID)
		}
		last[ev.CallID] = ev.To
	}
	r.Events, r.Calls = len(events), len(order)
	for _, id := range order {
		if last[id] == string(calld.StateEnded) {
			r.Ended++
		} else {
			r.Live = append(r.Live, id)
		}
	}
	return r, nil
}
