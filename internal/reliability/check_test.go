package reliability

import (
	"strings"
	"testing"

	"github.com/calld/calld"
)

func TestCheckJournal(t *testing.T) {
	ev := func(seq uint64, id int64, from, to string) calld.Event {
		return calld.Event{Seq: seq, CallID: id, From: from, To: to}
	}
	tests := []struct {
		name    string
		events  []calld.Event
		err     string
		ended   int
		live    int
		unnamed int
	}{
		{"empty", nil, "", 0, 0, 0},
		{"two calls interleaved", []calld.Event{
			ev(1, 7, "", "waiting"), ev(2, 8, "", "waiting"), ev(3, 7, "waiting", "ringing"),
			ev(4, 8, "waiting", "hanging_up"), ev(5, 7, "ringing", "ended"), ev(6, 8, "hanging_up", "ended"),
		}, "", 2, 0, 0},
		{"live call", []calld.Event{ev(1, 7, "", "waiting"), ev(2, 7, "waiting", "ringing")}, "", 0, 1, 0},
		{"unnamed outgoing", []calld.Event{ev(1, 0, "requesting", "ended"), ev(2, 9, "", "requesting")}, "", 0, 1, 1},
		{"gap", []calld.Event{ev(1, 7, "", "waiting"), ev(3, 7, "waiting", "ended")}, "seq 3, want 2", 0, 0, 0},
		{"repeat", []calld.Event{ev(1, 7, "", "waiting"), ev(1, 7, "waiting", "ended")}, "seq 1, want 2", 0, 0, 0},
		{"starts mid-chain", []calld.Event{ev(1, 7, "waiting", "ringing")}, "starts from \"waiting\"", 0, 0, 0},
		{"broken chain", []calld.Event{ev(1, 7, "", "waiting"), ev(2, 7, "ringing", "ended")}, "but was waiting", 0, 0, 0},
		{"after ended", []calld.Event{ev(1, 7, "", "waiting"), ev(2, 7, "waiting", "ended"), ev(3, 7, "ended", "ringing")}, "after ended", 0, 0, 0},
		{"no target", []calld.Event{ev(1, 7, "", "")}, "no target state", 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := CheckJournal(tc.events)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Ended != tc.ended || len(r.Live) != tc.live || r.Unnamed != tc.unnamed {
				t.Fatalf("report %+v, want ended %d live %d unnamed %d", r, tc.ended, tc.live, tc.unnamed)
			}
		})
	}
}
