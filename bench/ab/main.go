// Command ab runs calld and the baseline (bench/baseline: the bare gotd
// program a user would write instead) side by side against the simulated
// Telegram, as separate processes, interleaved A B A B over rounds, and
// prints a markdown table of calld/baseline ratios (median [min–max] over
// rounds) that it also writes to docs/bench/ab-DATE.txt. bench/run.sh
// builds both binaries and runs it; docs/performance.md explains every
// column.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	calld, baseline string
	baselineArgs    []string
	rounds          int
	bursts          []int
	singles         int
	kill            int
	quiet           time.Duration
	dir, out        string
	keep            bool
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ab:", err)
		os.Exit(2)
	}
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ab:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("ab", flag.ContinueOnError)
	fs.StringVar(&o.calld, "calld", "", "the calld binary (required)")
	fs.StringVar(&o.baseline, "baseline", "", "the baseline binary (required)")
	bargs := fs.String("baseline-args", "", "extra arguments of the baseline, space-separated (-inline: discard inside the handler)")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds (each runs every scenario for calld, then for the baseline)")
	sizes := fs.String("bursts", "500,5000", "burst sizes, comma-separated")
	fs.IntVar(&o.singles, "singles", 20, "single-call samples per run (0: none)")
	fs.IntVar(&o.kill, "kill", 5000, "calls of the SIGKILL scenario (0: none)")
	fs.DurationVar(&o.quiet, "quiet", 3*time.Second, "a run is over when the simulator saw nothing for this long")
	fs.StringVar(&o.dir, "dir", os.TempDir(), "where each run's state directory is made")
	fs.StringVar(&o.out, "out", "", "also write the table to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep each run's directory (state, session, logs) and print its path")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.calld == "" || o.baseline == "" {
		return o, fmt.Errorf("-calld and -baseline are required")
	}
	o.baselineArgs = strings.Fields(*bargs)
	for _, s := range strings.Split(*sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-bursts: %q is not a positive count", s)
		}
		o.bursts = append(o.bursts, n)
	}
	if o.rounds <= 0 {
		return o, fmt.Errorf("-rounds must be positive")
	}
	return o, nil
}

// scenario is one measured thing a side does in a fresh world.
type scenario struct {
	name  string
	title string
	ms    []metric
	run   func(w *world, s side, p *proc) (result, error)
}

func scenarios(o options) []scenario {
	var sc []scenario
	for _, n := range o.bursts {
		sc = append(sc, scenario{fmt.Sprintf("burst%d", n), fmt.Sprintf("burst of %d incoming calls, all refused busy", n), burstMetrics(),
			func(w *world, _ side, p *proc) (result, error) { return burst(w, p, n, o.quiet) }})
	}
	if o.singles > 0 {
		sc = append(sc, scenario{"single", fmt.Sprintf("%d single calls, one at a time", o.singles), singleMetrics(),
			func(w *world, s side, p *proc) (result, error) {
				r, err := singles(w, p, o.singles, o.quiet)
				if err == nil && s.name == sideCalld {
					r.durable, err = durableWrites(w.dir, durableSamples, 0)
					if err == nil {
						r.durableSpaced, err = durableWrites(w.dir, durableSamples, durableGap)
					}
				}
				return r, err
			}})
	}
	if o.kill > 0 {
		sc = append(sc, scenario{"kill", fmt.Sprintf("SIGKILL after %d of %d pushes, the rest pushed while down, then restart", o.kill/2, o.kill), killMetrics(),
			func(w *world, s side, p *proc) (result, error) { return killed(w, s, p, o.kill, o.quiet) }})
	}
	return sc
}

// once runs scenario sc for side s in a fresh world.
func once(o options, sc scenario, s side) (result, error) {
	w, err := newWorld(o.dir)
	if err != nil {
		return result{}, err
	}
	defer w.close(o.keep)
	if o.keep {
		fmt.Fprintf(os.Stderr, "%s %s: %s\n", sc.name, s.name, w.dir)
	}
	if err := s.prepare(w.srv, w.dir); err != nil {
		return result{}, err
	}
	p, err := s.start(w.srv, w.dir)
	if err != nil {
		return result{}, err
	}
	r, err := sc.run(w, s, p)
	select {
	case <-p.done:
	default:
		p.kill() // the scenario failed before it stopped the side
	}
	r.side, r.scenario = s.name, sc.name
	return r, err
}

// results are the runs of each scenario (by name) of each side (by
// name), in round order.
type results map[string]map[string][]result

// measure runs every scenario for calld then the baseline, round after
// round, each in a fresh world; progress gets a line per run.
func measure(o options, progress io.Writer) (results, error) {
	sides := []side{{sideCalld, o.calld, nil}, {sideBaseline, o.baseline, o.baselineArgs}}
	res := results{}
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range scenarios(o) {
			for _, s := range sides {
				r, err := once(o, sc, s)
				if err != nil {
					return nil, fmt.Errorf("round %d, %s, %s: %w", round, sc.name, s.name, err)
				}
				if res[sc.name] == nil {
					res[sc.name] = map[string][]result{}
				}
				res[sc.name][s.name] = append(res[sc.name][s.name], r)
				fmt.Fprintf(progress, "round %d %-9s %-8s wall %v cpu %v lost %d dup %d getDifference %d (load %s)\n",
					round, sc.name, s.name, r.wall.Round(time.Millisecond), r.cpu, r.lost, r.dup, r.getDiff, loadavg())
			}
		}
	}
	return res, nil
}

// render is the report: the header, then a table per scenario.
func render(o options, res results, loadBefore string) string {
	var b strings.Builder
	b.WriteString(header(commandLine(o), commit(), time.Now().UTC().Format(time.RFC3339), machine(), loadBefore))
	fmt.Fprintf(&b, "# load average after: %s\n", loadavg())
	for _, sc := range scenarios(o) {
		section(&b, sc.title, sc.ms, res[sc.name][sideCalld], res[sc.name][sideBaseline])
		b.WriteString(floorLine(res[sc.name][sideCalld], res[sc.name][sideBaseline]))
	}
	return b.String()
}

func run(o options, stdout, progress io.Writer) error {
	load := loadavg()
	res, err := measure(o, progress)
	if err != nil {
		return err
	}
	report := render(o, res, load)
	if _, err := io.WriteString(stdout, report); err != nil {
		return err
	}
	if o.out == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(o.out, []byte(report), 0o644)
}

func commandLine(o options) string {
	bursts := make([]string, len(o.bursts))
	for i, n := range o.bursts {
		bursts[i] = strconv.Itoa(n)
	}
	extra := ""
	if len(o.baselineArgs) > 0 {
		extra = fmt.Sprintf(" -baseline-args %q", strings.Join(o.baselineArgs, " "))
	}
	return fmt.Sprintf("bench/run.sh (ab -rounds %d -bursts %s -singles %d -kill %d -quiet %s%s)",
		o.rounds, strings.Join(bursts, ","), o.singles, o.kill, o.quiet, extra)
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s, %s %s/%s", runtime.NumCPU(), cpu, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
