package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// durableSamples is how many durable writes a single-call run of calld
// measures after it stopped calld, back to back and again spaced by
// durableGap.
const durableSamples = 100

// durableGap is the idle time before each spaced durable write: about
// the time between two single calls (one is pushed once the previous
// one's discard arrived, ~1 ms apart), during which the machine idles.
// A write after an idle gap takes longer than one right after another
// (here 0.23–0.37 ms p50 against 0.17 ms, a scratch program, 300 writes
// each): the single calls' writes are the spaced kind.
const durableGap = time.Millisecond

// durableWrites measures n durable writes in dir, on the disk of the
// state file: each overwrites 4 KiB of a file written and synced before
// and waits for fdatasync. That is the least a daemon pays to make one
// decision durable before it acts on it (no allocation, no metadata to
// journal); bbolt's commit pays two fdatasyncs. Each write but the
// first waits gap before it starts (0: back to back); the wait is not
// timed. The file is removed.
func durableWrites(dir string, n int, gap time.Duration) ([]time.Duration, error) {
	const page = 4096
	f, err := os.CreateTemp(dir, "durable-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, page)
	if _, err := f.Write(make([]byte, n*page)); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, n)
	for i := range n {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		buf[0] = byte(i)
		start := time.Now()
		if _, err := f.WriteAt(buf, int64(i*page)); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, fmt.Errorf("fdatasync %s: %w", filepath.Base(f.Name()), err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// floorLine says, for the single calls, how far the bare program's p50
// plus one durable write's p50 is from the baseline, round by round:
// the floor of any calld that makes its decision durable before it sends
// the discard (CONTRACT §5.1: at most one discardCall per call across any
// restart), even one that did nothing else more than the bare program;
// with the writes back to back, then spaced as the single calls are.
// Empty when no round measured durable writes.
func floorLine(calld, base []result) string {
	writes, ratios := floor(calld, base, func(r result) []time.Duration { return r.durable })
	if len(writes) == 0 {
		return ""
	}
	line := fmt.Sprintf("\nOne durable write in the state directory (4 KiB, fdatasync; %d after each calld run), p50: %s ms. "+
		"The baseline's p50 plus that write, over the baseline's p50 (the floor of a discard sent only once its decision is durable): %s.",
		durableSamples, summary(writes, "%.2f"), summary(ratios, "%.2fx"))
	if writes, ratios := floor(calld, base, func(r result) []time.Duration { return r.durableSpaced }); len(writes) > 0 {
		line += fmt.Sprintf(" Spaced %v apart, as the single calls are: p50 %s ms, floor %s.",
			durableGap, summary(writes, "%.2f"), summary(ratios, "%.2fx"))
	}
	return line + "\n"
}

// floor returns, per round with both, the p50 of calld's writes (which
// picks) in ms and the baseline's p50 plus it over the baseline's p50.
func floor(calld, base []result, which func(result) []time.Duration) (writes, ratios []float64) {
	for i := range calld {
		d := which(calld[i])
		if len(d) == 0 || i >= len(base) || len(base[i].latencies) == 0 {
			continue
		}
		w := percentile(d, 0.5)
		b := percentile(base[i].latencies, 0.5)
		writes = append(writes, float64(w)/float64(time.Millisecond))
		ratios = append(ratios, float64(b+w)/float64(b))
	}
	return writes, ratios
}
