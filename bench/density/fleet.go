package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/sim"
)

// member is one daemon of the fleet and its account.
type member struct {
	acct                 *sim.Account
	config, state, sock  string
	cmd                  *exec.Cmd
	done                 chan struct{}
	started              time.Time
	ready                chan time.Duration // the daemon.ready line, once
	readyDur, healthyDur time.Duration
	mem                  map[string]int // KiB: VmRSS, VmHWM, RssAnon, RssFile, Pss
	goMem                map[string]float64
	cpuPct               float64
}

type fleet struct {
	o       options
	srv     *sim.Server
	members []*member
}

// result is one N's measurements.
type result struct {
	n        int
	members  []*member
	calls    int
	loadTime time.Duration
}

func (r result) columns() (ready, healthy, rss, hwm, cpu []float64) {
	for _, m := range r.members {
		ready = append(ready, float64(m.readyDur.Milliseconds()))
		healthy = append(healthy, float64(m.healthyDur.Milliseconds()))
		rss = append(rss, float64(m.mem["VmRSS"])/1024)
		hwm = append(hwm, float64(m.mem["VmHWM"])/1024)
		cpu = append(cpu, m.cpuPct)
	}
	return
}

// column is one figure of every member of r.
func (r result) column(f func(*member) float64) []float64 {
	var out []float64
	for _, m := range r.members {
		out = append(out, f(m))
	}
	return out
}

func medMax(v []float64, prec int) string {
	if len(v) == 0 {
		return "-"
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf("%.*f / %.*f", prec, med, prec, s[len(s)-1])
}

// newFleet writes the configs of n daemons under dir: the default account
// and n-1 added ones, every incoming call refused.
func newFleet(o options, srv *sim.Server, dir string, n int) (*fleet, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keys := filepath.Join(dir, "keys.pem")
	if err := os.WriteFile(keys, srv.PublicKeyPEM(), 0o600); err != nil {
		return nil, err
	}
	f := &fleet{o: o, srv: srv}
	for i := 0; i < n; i++ {
		a := srv.Account()
		if i > 0 {
			a = srv.AddAccount(fmt.Sprintf("1555100%04d", i))
		}
		m := &member{
			acct:   a,
			config: filepath.Join(dir, fmt.Sprintf("d%d.toml", i)),
			state:  filepath.Join(dir, fmt.Sprintf("d%d.db", i)),
			sock:   filepath.Join(dir, fmt.Sprintf("d%d.sock", i)),
		}
		cfg := srv.CalldTelegramConfig(a.SelfID(), "density", keys) + `
[policy]
incoming = "reject"

[log]
level = "info"
format = "json"
`
		if err := os.WriteFile(m.config, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		f.members = append(f.members, m)
	}
	return f, nil
}

// spawn starts every daemon at once; each member's ready channel gets the
// time from exec to its daemon.ready log line.
func (f *fleet) spawn() error {
	for _, m := range f.members {
		m.cmd = exec.Command(f.o.bin, "serve", "--config", m.config, "--state", m.state, "--socket", m.sock)
		m.cmd.Env = os.Environ()
		if f.o.goMemLim != "" {
			m.cmd.Env = append(m.cmd.Env, "GOMEMLIMIT="+f.o.goMemLim)
		}
		logs, err := m.cmd.StderrPipe()
		if err != nil {
			return err
		}
		m.cmd.Stdout = nil
		m.ready = make(chan time.Duration, 1)
		m.done = make(chan struct{})
		m.started = time.Now()
		if err := m.cmd.Start(); err != nil {
			return err
		}
		go m.watch(logs)
	}
	return nil
}

// watch reads the daemon's JSON log lines until the daemon.ready one,
// then drains them, and reaps the process.
func (m *member) watch(logs io.Reader) {
	sc := bufio.NewScanner(logs)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Event == logging.EventDaemonReady {
			m.ready <- time.Since(m.started)
			break
		}
	}
	discard(logs)
	_ = m.cmd.Wait()
	close(m.done)
}

// firstStart spawns the fleet for the first time (each daemon makes its
// auth key, which the simulator binds to the account whose user id is
// the config's api_id) and waits until each is healthy as its account.
func (f *fleet) firstStart(ctx context.Context) error {
	if err := f.spawn(); err != nil {
		return err
	}
	return f.each(func(m *member) error {
		cl := client.New(m.sock)
		defer cl.Close()
		for {
			st, err := cl.Status(ctx)
			if err == nil && st.Telegram.Authorized {
				if st.Telegram.SelfID != m.acct.SelfID() {
					return fmt.Errorf("%s is user %d, want %d", m.sock, st.Telegram.SelfID, m.acct.SelfID())
				}
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-m.done:
				return fmt.Errorf("%s exited", m.sock)
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// each runs f on every member concurrently and returns the first error.
func (f *fleet) each(fn func(*member) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.members))
	for i, m := range f.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(m)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// start spawns the fleet (sessions saved) and records READY and healthy.
func (f *fleet) start(ctx context.Context, r *result) error {
	if err := f.spawn(); err != nil {
		return err
	}
	r.members = f.members
	return f.each(func(m *member) error {
		select {
		case m.readyDur = <-m.ready:
		case <-m.done:
			return fmt.Errorf("%s exited before READY", m.sock)
		case <-ctx.Done():
			return ctx.Err()
		}
		cl := client.New(m.sock)
		defer cl.Close()
		for {
			h, err := cl.Health(ctx)
			if err == nil && h.Status == "ok" {
				m.healthyDur = time.Since(m.started)
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// idle waits settle, then measures CPU over the idle window and the
// memory at its end.
func (f *fleet) idle(ctx context.Context, o options, r *result) error {
	time.Sleep(o.settle)
	before := make([]int, len(f.members))
	for i, m := range f.members {
		t, err := cpuTicks(m.cmd.Process.Pid)
		if err != nil {
			return err
		}
		before[i] = t
	}
	t0 := time.Now()
	time.Sleep(o.idle)
	wall := time.Since(t0)
	for i, m := range f.members {
		t, err := cpuTicks(m.cmd.Process.Pid)
		if err != nil {
			return err
		}
		if wall > 0 {
			m.cpuPct = 100 * float64(t-before[i]) / clkTck / wall.Seconds()
		}
		if m.mem, err = memKiB(m.cmd.Process.Pid); err != nil {
			return err
		}
		if m.goMem, err = goMemStats(ctx, m.sock); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// load pushes calls incoming calls to every account at once and waits
// until every daemon has refused all of its own (phone.discardCall).
func (f *fleet) load(ctx context.Context, calls int, r *result) error {
	peer := f.srv.AddPeer("density_caller")
	t0 := time.Now()
	err := f.each(func(m *member) error {
		for i := 0; i < calls; i++ {
			if _, err := m.acct.IncomingCall(peer, false); err != nil {
				return err
			}
		}
		return m.acct.WaitCount(ctx, "phone.discardCall", calls)
	})
	r.loadTime = time.Since(t0)
	r.calls = calls * len(f.members)
	return err
}

// stop sends SIGTERM to every daemon and waits for them.
func (f *fleet) stop() error {
	return f.each(func(m *member) error {
		if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s did not stop within 30 s", m.sock)
		}
		if code := m.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited %d", m.sock, code)
		}
		return nil
	})
}

// kill ends whatever still runs (after an error).
func (f *fleet) kill() {
	for _, m := range f.members {
		if m.cmd != nil && m.cmd.Process != nil && m.cmd.ProcessState == nil {
			_ = m.cmd.Process.Kill()
		}
	}
}

// clkTck is USER_HZ, the unit of /proc/PID/stat's utime and stime (100 on
// every Linux architecture Go supports).
const clkTck = 100

// cpuTicks is utime+stime of pid.
func cpuTicks(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name (which may hold spaces).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.Atoi(fields[11])
	stime, err2 := strconv.Atoi(fields[12])
	return utime + stime, errors.Join(err1, err2)
}

// memKiB is VmRSS, VmHWM, RssAnon and RssFile of /proc/PID/status and
// Pss of /proc/PID/smaps_rollup (the binary's pages, shared by every
// daemon, count 1/N in Pss), in KiB.
func memKiB(pid int) (map[string]int, error) {
	out := map[string]int{}
	for _, f := range []string{"status", "smaps_rollup"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch k {
			case "VmRSS", "VmHWM", "RssAnon", "RssFile", "Pss":
				out[k], _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	return out, nil
}

// goMemStats reads the Go runtime's memory figures from the daemon's
// GET /metrics (its Go collector).
func goMemStats(ctx context.Context, sock string) (map[string]float64, error) {
	cl := client.New(sock)
	defer cl.Close()
	text, err := cl.Raw(ctx, "GET", "/metrics", nil)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(text), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "go_goroutines":
			out[name], _ = strconv.ParseFloat(val, 64)
		}
	}
	return out, nil
}
