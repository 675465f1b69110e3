// Package fsm owns the lifecycle of one 1:1 Telegram call: the machine
// over the states of a calld.Call (the domain, at the root), the
// transition table (driven by github.com/looplab/fsm), and the pure
// decisions of how a call ends: discard reason, duration, connection_id and
// video flag (reference/calls.md §5).
//
// A Machine does no I/O, starts no goroutines and logs nothing. Time is
// passed in on every call. The call manager feeds it Inputs (Remote, Local,
// Timer, RPCResult) on one goroutine and executes the Actions of the Step it
// gets back (SendAccept, SendConfirm, SendDiscard), persists Call() and
// journals each Transition. A Machine is not safe for concurrent use.
//
// docs/fsm.md is generated from the table in table.go
// (go test ./internal/fsm -run TestDocs -update).
package fsm
