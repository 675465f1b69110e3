// Command density measures how many calld daemons one machine holds
// (issue 13, docs/performance.md, "Density"): one in-process simulator serving N accounts
// and N `calld serve` processes (the real binary, built once), each with
// its own config, state file and socket, and its own account (the
// simulator is Authorized and binds a daemon's auth key to the account
// whose user id is its config's api_id: no login step).
// Per daemon it measures start to READY (the daemon.ready log line, after
// READY=1, on a start with a session), idle VmRSS and VmHWM, idle CPU over
// -idle (utime+stime from /proc/PID/stat), and with every daemon refusing
// -calls incoming calls at once ([policy] incoming = "reject"), the total
// calls per second. It prints a table and writes it to -out.
//
//	go run ./bench/density -n 1,10,50            # from the repository root
//	go run ./bench/density -n 2 -idle 0 -out ""  # a smoke run
package main

import (
	"context"
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

	"github.com/calld/calld/internal/sim"
)

type options struct {
	ns       []int
	idle     time.Duration
	settle   time.Duration
	calls    int
	out      string
	bin      string
	goMemLim string
}

func main() {
	var o options
	ns := flag.String("n", "1,10,50", "comma-separated numbers of daemons")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "idle CPU window (0: skip)")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "wait after every daemon is healthy, before the idle window")
	flag.IntVar(&o.calls, "calls", 100, "incoming calls pushed at once to each account")
	flag.StringVar(&o.out, "out", "docs/bench/density-"+time.Now().UTC().Format("2006-01-02")+".txt", "file for the table (\"\": none)")
	flag.StringVar(&o.bin, "bin", "", "a built calld binary (default: go build ./cmd/calld)")
	flag.StringVar(&o.goMemLim, "gomemlimit", "", "GOMEMLIMIT for every daemon (\"\": unset)")
	flag.Parse()
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "density: bad -n %q\n", f)
			os.Exit(2)
		}
		o.ns = append(o.ns, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "density:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	tmp, err := os.MkdirTemp("", "calld-density-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "calld")
		build := exec.Command("go", "build", "-o", o.bin, "./cmd/calld")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/calld (run from the repository root): %w", err)
		}
	}
	var results []result
	for _, n := range o.ns {
		fmt.Fprintf(os.Stderr, "density: N=%d …\n", n)
		r, err := measure(o, filepath.Join(tmp, fmt.Sprintf("n%d", n)), n)
		if err != nil {
			return fmt.Errorf("%d daemons: %w", n, err)
		}
		results = append(results, r)
	}
	table := header(o) + format(results) + breakdown(results)
	fmt.Print(table)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(table), 0o644)
	}
	return nil
}

// header describes the run: the machine, its load, the parameters.
func header(o options) string {
	load, _ := os.ReadFile("/proc/loadavg")
	var b strings.Builder
	fmt.Fprintf(&b, "calld density, %s UTC\n", time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, "machine: %s/%s, %d CPUs, %s; load average at the end: %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), load)
	fmt.Fprintf(&b, "parameters: idle window %s after %s of settling, %d calls per account at once, GOMEMLIMIT %q\n", o.idle, o.settle, o.calls, o.goMemLim)
	b.WriteString("READY: from exec to the daemon.ready log line, the daemons of one N started at once, each with a saved session.\n")
	b.WriteString("healthy: from exec to /v1/health 200 (connected and authorized), polled every 50 ms.\n")
	b.WriteString("RSS, HWM: VmRSS and VmHWM of /proc/PID/status at the end of the idle window.\n")
	b.WriteString("idle CPU: utime+stime of /proc/PID/stat over the idle window, % of one core.\n\n")
	return b.String()
}

// format prints median and max per daemon for each N.
func format(rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%4s  %-19s %-19s %-17s %-17s %-17s %s\n", "N", "READY ms med/max", "healthy ms med/max", "RSS MiB med/max", "HWM MiB med/max", "idle CPU % med/max", "refusals/s (total)")
	for _, r := range rs {
		ready, healthy, rss, hwm, cpu := r.columns()
		fmt.Fprintf(&b, "%4d  %-19s %-19s %-17s %-17s %-17s %.0f (%d calls in %s)\n", r.n,
			medMax(ready, 0), medMax(healthy, 0), medMax(rss, 1), medMax(hwm, 1), medMax(cpu, 3),
			float64(r.calls)/r.loadTime.Seconds(), r.calls, r.loadTime.Round(time.Millisecond))
	}
	return b.String()
}

// breakdown prints where the memory of one idle daemon goes (median /
// max per daemon, MiB): Pss, anonymous and file-backed RSS, and the Go
// runtime's heap in use, stacks and total from the runtime (Sys).
func breakdown(rs []result) string {
	kib := func(k string) func(*member) float64 {
		return func(m *member) float64 { return float64(m.mem[k]) / 1024 }
	}
	gob := func(k string) func(*member) float64 {
		return func(m *member) float64 { return m.goMem[k] / (1 << 20) }
	}
	cols := []struct {
		name string
		f    func(*member) float64
	}{
		{"Pss", kib("Pss")}, {"RssAnon", kib("RssAnon")}, {"RssFile", kib("RssFile")},
		{"Go heap", gob("go_memstats_heap_inuse_bytes")}, {"Go stacks", gob("go_memstats_stack_inuse_bytes")},
		{"Go sys", gob("go_memstats_sys_bytes")},
	}
	var b strings.Builder
	b.WriteString("\nmemory of an idle daemon, MiB, median / max per daemon:\n   N")
	for _, c := range cols {
		fmt.Fprintf(&b, "  %-13s", c.name)
	}
	fmt.Fprintf(&b, "  %s\n", "goroutines")
	for _, r := range rs {
		fmt.Fprintf(&b, "%4d", r.n)
		for _, c := range cols {
			fmt.Fprintf(&b, "  %-13s", medMax(r.column(c.f), 1))
		}
		fmt.Fprintf(&b, "  %s\n", medMax(r.column(func(m *member) float64 { return m.goMem["go_goroutines"] }), 0))
	}
	return b.String()
}

// measure runs one N: set-up (a first start: every daemon makes its auth
// key, bound to its own account by its api_id; stop them), then the
// measured start, the idle window and the load.
func measure(o options, dir string, n int) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	srv, err := sim.New(sim.Options{Authorized: true})
	if err != nil {
		return result{}, err
	}
	if err := srv.Listen(ctx, "127.0.0.1:0"); err != nil {
		return result{}, err
	}
	defer srv.Close()
	fleet, err := newFleet(o, srv, dir, n)
	if err != nil {
		return result{}, err
	}
	defer fleet.kill()
	if err := fleet.firstStart(ctx); err != nil {
		return result{}, fmt.Errorf("first start: %w", err)
	}
	if err := fleet.stop(); err != nil {
		return result{}, fmt.Errorf("stop after the first start: %w", err)
	}
	r := result{n: n}
	if err := fleet.start(ctx, &r); err != nil {
		return r, err
	}
	if err := fleet.idle(ctx, o, &r); err != nil {
		return r, err
	}
	if err := fleet.load(ctx, o.calls, &r); err != nil {
		return r, err
	}
	return r, fleet.stop()
}

// discard drains a reader (a daemon's logs once they are not needed).
func discard(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
