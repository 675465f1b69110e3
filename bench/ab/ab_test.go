package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseHWM(t *testing.T) {
	tests := []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"status", "Name:\tcalld\nVmPeak:\t  900 kB\nVmHWM:\t   40960 kB\nVmRSS:\t 30000 kB\n", 40 << 20, false},
		{"missing", "Name:\tcalld\nVmRSS:\t 30000 kB\n", 0, true},
		{"other unit", "VmHWM:\t 4 MB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHWM(tt.status)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseHWM = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestProcOfSelf reads this process's CPU clock and /proc files: cpuOf
// follows the process's own CPU clock, and the parsers agree
// with the kernel's format.
func TestProcOfSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := cpuOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	var spin, self unix.Timespec
	for {
		// Spin until this process has run 2 ms more by its own clock.
		if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &self); err != nil {
			t.Fatal(err)
		}
		if spin.Nano() == 0 {
			spin = self
		}
		if self.Nano()-spin.Nano() >= 2e6 {
			break
		}
	}
	after, err := cpuOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Read from outside, the same clock: at least the 2 ms spun, and no
	// more than what this process says it used by the second reading.
	if d := after - before; d < 2*time.Millisecond {
		t.Errorf("cpuOf moved %v over a 2 ms spin", d)
	}
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &self); err != nil {
		t.Fatal(err)
	}
	if after > time.Duration(self.Nano()) {
		t.Errorf("cpuOf = %v, more than the process's own clock %v read after it", after, time.Duration(self.Nano()))
	}
	hwm, err := hwmOf(pid)
	if err != nil || hwm < 1<<20 {
		t.Fatalf("hwmOf = %d, %v; want at least 1 MiB", hwm, err)
	}
}

// TestCPUOfAChild reads another process's CPU clock, as the driver reads
// the sides': while this test blocks reading a child's output, the child
// burns CPU; its clock moves by at least 20 ms and by more than twice
// what this process's own clock moved meanwhile (a clock id that ignored
// the pid would have moved as this process's).
func TestCPUOfAChild(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, "-c", `read go; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo burnt; read x`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	selfCPU := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	child0, err := cpuOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	self0 := selfCPU()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "burnt\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	child1, err := cpuOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	child, own := child1-child0, selfCPU()-self0
	if child < 20*time.Millisecond || child < 2*own {
		t.Fatalf("the child's clock moved %v, this process's %v: want at least 20 ms and twice this one's", child, own)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		d := make([]time.Duration, len(xs))
		for i, x := range xs {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{ms(5), 0.5, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.99, 4 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.9, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		in   []float64
		want string
	}{
		{nil, "–"},
		{[]float64{2}, "2.00"},
		{[]float64{3, 1, 2}, "2.00 [1.00–3.00]"},
		{[]float64{4, 1, 2, 3}, "2.50 [1.00–4.00]"},
	}
	for _, tt := range tests {
		if got := summary(tt.in, "%.2f"); got != tt.want {
			t.Errorf("summary(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRowRatios: the ratio column is the median of the per-round ratios
// calld/baseline, not the ratio of the medians; a run without a value (an
// incomplete burst has no rate) drops out.
func TestRowRatios(t *testing.T) {
	rate := burstMetrics()[0]
	run := func(calls int, wall time.Duration, complete bool) result {
		return result{calls: calls, wall: wall, complete: complete}
	}
	calld := []result{run(100, time.Second, true), run(100, 2*time.Second, true), run(100, time.Second, true)}
	base := []result{run(100, time.Second, true), run(100, time.Second, true), run(100, 500*time.Millisecond, false)}
	got := row(rate, calld, base)
	want := "| calls/s (first push → last discard answered) | 100 [100–100] | 100 [50–100] | 0.75x [0.50x–1.00x] |"
	if got != want {
		t.Fatalf("row:\n got %s\nwant %s", got, want)
	}
	lost := burstMetrics()[len(burstMetrics())-2]
	if got := row(lost, []result{{lost: 0}}, []result{{lost: 7}}); got != "| calls lost | 7 | 0 | |" {
		t.Fatalf("count row: %s", got)
	}
}

// TestDurableWrites: n timed writes in the directory, each one synced,
// and the file gone after.
func TestDurableWrites(t *testing.T) {
	dir := t.TempDir()
	for _, gap := range []time.Duration{0, time.Millisecond} {
		start := time.Now()
		got, err := durableWrites(dir, 5, gap)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 || slices.Min(got) <= 0 {
			t.Fatalf("gap %v: durations %v, want 5 positive", gap, got)
		}
		// The gap is waited before each write but the first, and not
		// timed: the call lasts at least the 4 gaps.
		if took := time.Since(start); took < 4*gap {
			t.Fatalf("gap %v: 5 writes took %v, less than the 4 gaps", gap, took)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left in the directory: %v", left)
	}
	if _, err := durableWrites(filepath.Join(dir, "missing"), 1, 0); err == nil {
		t.Fatal("a missing directory: no error")
	}
}

// TestFloorLine: per round, the baseline's p50 plus calld's durable
// write p50 over the baseline's p50; rounds without durable writes or
// baseline latencies drop out, and no line when none is left.
func TestFloorLine(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x * float64(time.Millisecond))
		}
		return d
	}
	calld := []result{{durable: ms(0.2, 0.1, 0.3)}, {durable: ms(0.4)}, {durable: ms(9)}, {}}
	base := []result{{latencies: ms(0.4, 0.3, 0.5)}, {latencies: ms(0.2)}, {}, {latencies: ms(1)}}
	got := floorLine(calld, base)
	for _, want := range []string{"p50: 0.30 [0.20–0.40] ms", "durable): 2.25x [1.50x–3.00x]"} {
		if !strings.Contains(got, want) {
			t.Errorf("floor line lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Spaced") {
		t.Errorf("no spaced writes, yet:\n%s", got)
	}
	// Round 0: 0.6 ms, (0.4+0.6)/0.4 = 2.5x; round 1: p50 (nearest rank) of
	// 0.2 and 0.8 is 0.2, (0.2+0.2)/0.2 = 2x.
	calld[0].durableSpaced, calld[1].durableSpaced = ms(0.6), ms(0.2, 0.8)
	got = floorLine(calld, base)
	for _, want := range []string{"durable): 2.25x [1.50x–3.00x]", "Spaced 1ms apart, as the single calls are: p50 0.40 [0.20–0.60] ms, floor 2.25x [2.00x–2.50x]."} {
		if !strings.Contains(got, want) {
			t.Errorf("floor line lacks %q:\n%s", want, got)
		}
	}
	if got := floorLine([]result{{}}, []result{{latencies: ms(1)}}); got != "" {
		t.Errorf("no durable writes: %q", got)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    string
		bursts  []int
		wantErr bool
	}{
		{"-calld c -baseline b", []int{500, 5000}, false},
		{"-calld c -baseline b -bursts 20", []int{20}, false},
		{"-calld c -baseline b -bursts 20,x", nil, true},
		{"-calld c -baseline b -rounds 0", nil, true},
		{"-baseline b", nil, true},
	}
	for _, tt := range tests {
		o, err := parseFlags(strings.Fields(tt.args))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.args, err, tt.wantErr)
			continue
		}
		if err == nil && !slices.Equal(o.bursts, tt.bursts) {
			t.Errorf("%q: bursts %v, want %v", tt.args, o.bursts, tt.bursts)
		}
	}
}

// build compiles the main package at pkg into dir/name (safe to call
// from another goroutine: a failure is an Errorf).
func build(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	// Never -race, even when the test is: the binaries are measured, not
	// checked, and `go vet ./...` (CI's step before the tests) leaves their
	// packages compiled in the build cache, so this is mostly linking.
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestSmallRun is the driver end to end, small: both programs built and
// run as processes against the simulator, a burst of 20 calls and two
// single calls each. calld must discard every call exactly once; the
// report must hold both tables. The quiet period is long because it only
// ends a run that went wrong: a run that works ends at its last discard.
func TestSmallRun(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	o := options{rounds: 1, bursts: []int{20}, singles: 2, quiet: 30 * time.Second, dir: dir}
	var wg sync.WaitGroup
	wg.Go(func() { o.calld = build(t, dir, "calld", "../../cmd/calld") })
	wg.Go(func() { o.baseline = build(t, dir, "baseline", "../baseline") })
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("built in %v", time.Since(start))
	var progress strings.Builder
	res, err := measure(o, &progress)
	t.Logf("measured in %v:\n%s", time.Since(start), progress.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"burst20", "single"} {
		for _, s := range []string{sideCalld, sideBaseline} {
			if n := len(res[sc][s]); n != 1 {
				t.Fatalf("%s %s: %d runs, want 1", sc, s, n)
			}
		}
		r := res[sc][sideCalld][0]
		if !r.complete || r.lost != 0 || r.dup != 0 || len(r.latencies) != r.calls {
			t.Errorf("calld %s: complete %v, lost %d, dup %d, %d latencies of %d calls", sc, r.complete, r.lost, r.dup, len(r.latencies), r.calls)
		}
	}
	if b := res["burst20"][sideCalld][0]; b.cpu <= 0 || b.hwm < 1<<20 || b.wall <= 0 {
		t.Errorf("calld burst: cpu %v, hwm %d, wall %v", b.cpu, b.hwm, b.wall)
	}
	report := render(o, res, loadavg())
	if d := res["single"][sideCalld][0].durable; len(d) != durableSamples {
		t.Errorf("calld single: %d durable writes, want %d", len(d), durableSamples)
	}
	if d := res["single"][sideCalld][0].durableSpaced; len(d) != durableSamples {
		t.Errorf("calld single: %d spaced durable writes, want %d", len(d), durableSamples)
	}
	for _, want := range []string{"| burst of 20 incoming calls, all refused busy | baseline | calld | calld / baseline |", "| 2 single calls, one at a time |", "# commit: ", "One durable write in the state directory"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// BenchmarkSimPush is the simulator's side of a burst alone: one
// sim.IncomingCall with no client connected, its DH half prepared as the
// scenarios prepare it. The burst's "pushing" row cannot be shorter.
func BenchmarkSimPush(b *testing.B) {
	w, err := newWorld(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer w.close(false)
	w.srv.PrepareCalls(b.N)
	b.ResetTimer()
	if err := w.push(b.N); err != nil {
		b.Fatal(err)
	}
}
