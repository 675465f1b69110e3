package calld_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/calld/calld"
)

// TestTimesHaveFractions: the API's times are RFC 3339 UTC with fractional
// seconds even when the fraction is zero, and read back exactly.
func TestTimesHaveFractions(t *testing.T) {
	at := time.Date(2026, 11, 24, 23, 0, 5, 0, time.FixedZone("X", 3600))
	active := at.Add(1500 * time.Millisecond)
	c := calld.Call{ID: 1, State: calld.StateActive, CreatedAt: &at, ActiveAt: &active}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"created_at":"2026-11-24T22:00:05.000000000Z"`,
		`"active_at":"2026-11-24T22:00:06.500000000Z"`,
		`"id":"1"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("call JSON lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), "ringing_at") {
		t.Errorf("an unset time was written: %s", b)
	}
	var back calld.Call
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.CreatedAt.Equal(at) || !back.ActiveAt.Equal(active) {
		t.Fatalf("round trip: %v %v", back.CreatedAt, back.ActiveAt)
	}

	e, err := json.Marshal(calld.Event{Seq: 3, At: at, Event: "call.state", CallID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(e), `"at":"2026-11-24T22:00:05.000000000Z"`) || !strings.Contains(string(e), `"seq":3`) {
		t.Fatalf("event JSON: %s", e)
	}
	if got, _ := calld.Time(at).MarshalText(); string(got) != "2026-11-24T22:00:05.000000000Z" {
		t.Fatalf("calld.Time: %s", got)
	}
}
