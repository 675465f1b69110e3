package logging

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExampleLevels: every example line of docs/logging.md has a
// level its event's row of the Events table names ("info / warn").
func TestDocsExampleLevels(t *testing.T) {
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	_, events, _ := strings.Cut(string(doc), "\n## Events\n")
	events, _, _ = strings.Cut(events, "\n## ")
	name := regexp.MustCompile("^ *`([^`]+)` *$")
	levels := map[string][]string{}
	for _, line := range strings.Split(events, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		if m := name.FindStringSubmatch(cells[1]); m != nil {
			for _, l := range strings.Split(cells[2], "/") {
				levels[m[1]] = append(levels[m[1]], strings.TrimSpace(l))
			}
		}
	}
	n := 0
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, `{"time"`) {
			continue
		}
		var l struct{ Level, Event string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("example %s: %v", line, err)
		}
		n++
		ok := false
		for _, want := range levels[l.Event] {
			ok = ok || want == l.Level
		}
		if !ok {
			t.Errorf("example %s %s: the Events table says %v", l.Event, l.Level, levels[l.Event])
		}
	}
	if n == 0 || len(levels) == 0 {
		t.Fatalf("no example lines (%d) or no levels (%d) in docs/logging.md", n, len(levels))
	}
}
