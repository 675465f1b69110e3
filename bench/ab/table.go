package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// metric is one row of the table: a value per run, and whether the
// calld/baseline ratio means anything (not for counts that are 0).
type metric struct {
	name  string
	value func(result) (float64, bool) // false: no value (for example no latency)
	unit  string                       // format of a value
	ratio bool
}

func latencyPct(p float64) func(result) (float64, bool) {
	return func(r result) (float64, bool) {
		if len(r.latencies) == 0 {
			return 0, false
		}
		return float64(percentile(r.latencies, p)) / float64(time.Millisecond), true
	}
}

func burstMetrics() []metric {
	return []metric{
		{"calls/s (first push → last discard answered)", func(r result) (float64, bool) {
			if r.wall <= 0 || !r.complete {
				return 0, false // not every call was discarded: no rate
			}
			return float64(r.calls) / r.wall.Seconds(), true
		}, "%.0f", true},
		{"pushing the burst (the simulator's side), s", func(r result) (float64, bool) { return r.pushing.Seconds(), true }, "%.2f", false},
		{"client CPU seconds for the burst", func(r result) (float64, bool) { return r.cpu.Seconds(), true }, "%.2f", true},
		{"client CPU seconds, the burst to the exit after SIGTERM", func(r result) (float64, bool) { return r.cpuStop.Seconds(), r.cpuStop > 0 }, "%.2f", true},
		{"peak RSS (VmHWM), MiB", func(r result) (float64, bool) { return float64(r.hwm) / (1 << 20), true }, "%.0f", true},
		{"push → discardCall at the sim, p50 ms", latencyPct(0.50), "%.2f", true},
		{"push → discardCall at the sim, p99 ms", latencyPct(0.99), "%.2f", true},
		{"getDifference calls during the burst", func(r result) (float64, bool) { return float64(r.getDiff), true }, "%.0f", false},
		{"calls lost", func(r result) (float64, bool) { return float64(r.lost), true }, "%.0f", false},
		{"calls discarded more than once", func(r result) (float64, bool) { return float64(r.dup), true }, "%.0f", false},
	}
}

func singleMetrics() []metric {
	return []metric{
		{"push → discardCall at the sim, p50 ms", latencyPct(0.50), "%.2f", true},
		{"push → discardCall at the sim, p99 ms", latencyPct(0.99), "%.2f", true},
	}
}

func killMetrics() []metric {
	return []metric{
		{"calls lost (never discarded once both ran to quiet)", func(r result) (float64, bool) { return float64(r.lost), true }, "%.0f", false},
		{"calls discarded more than once", func(r result) (float64, bool) { return float64(r.dup), true }, "%.0f", false},
	}
}

// percentile is the nearest-rank percentile of d (0 < p <= 1).
func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// summary is "median [min–max]" of xs formatted with unit; "–" when empty.
func summary(xs []float64, unit string) string {
	if len(xs) == 0 {
		return "–"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if len(s) == 1 {
		return fmt.Sprintf(unit, med)
	}
	return fmt.Sprintf(unit+" ["+unit+"–"+unit+"]", med, s[0], s[len(s)-1])
}

// row is the markdown row of m over the rounds: calld's and the
// baseline's values and the per-round ratios calld/baseline.
func row(m metric, calld, base []result) string {
	var a, b, ratios []float64
	for i := range calld {
		va, okA := m.value(calld[i])
		if okA {
			a = append(a, va)
		}
		if i >= len(base) {
			continue
		}
		vb, okB := m.value(base[i])
		if okB {
			b = append(b, vb)
		}
		if m.ratio && okA && okB && vb != 0 {
			ratios = append(ratios, va/vb)
		}
	}
	if m.ratio {
		return fmt.Sprintf("| %s | %s | %s | %s |", m.name, summary(b, m.unit), summary(a, m.unit), summary(ratios, "%.2fx"))
	}
	return fmt.Sprintf("| %s | %s | %s | |", m.name, summary(b, m.unit), summary(a, m.unit))
}

// section writes one scenario's table.
func section(w io.Writer, title string, ms []metric, calld, base []result) {
	fmt.Fprintf(w, "\n| %s | baseline | calld | calld / baseline |\n|---|---:|---:|---:|\n", title)
	for _, m := range ms {
		fmt.Fprintln(w, row(m, calld, base))
	}
	if a, b := incomplete(calld), incomplete(base); a+b > 0 {
		fmt.Fprintf(w, "\nRuns that did not discard every call before going quiet: baseline %d of %d, calld %d of %d.\n", b, len(base), a, len(calld))
	}
}

func incomplete(rs []result) int {
	n := 0
	for _, r := range rs {
		if !r.complete {
			n++
		}
	}
	return n
}

// header is the table's preamble: what ran, where, when.
func header(command, commit, date, machine, load string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# calld against the baseline (bench/ab), values median [min–max] over rounds\n")
	fmt.Fprintf(&b, "# command: %s\n# commit: %s\n# date: %s\n# machine: %s\n# load average before: %s\n",
		command, commit, date, machine, load)
	return b.String()
}
