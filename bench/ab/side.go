package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// A side is one of the two programs compared: it knows how to start its
// process in a directory against a simulator and how to tell it is ready.
type side struct {
	name string
	bin  string
	args []string // extra arguments
}

const (
	sideCalld    = "calld"
	sideBaseline = "baseline"
	readyTimeout = 60 * time.Second
)

// proc is a running side.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// calldConfig is calld.toml for a run: the simulator, policy reject, the
// state file and socket in dir, log level info, format json.
func calldConfig(srv *sim.Server, dir string) string {
	return srv.CalldTelegramConfig(1, "ab", filepath.Join(dir, "keys.pem")) + fmt.Sprintf(`
[state]
path = %q

[control]
socket = %q

[log]
level = "info"
format = "json"

[policy]
incoming = "reject"
`, filepath.Join(dir, "calld.db"), filepath.Join(dir, "calld.sock"))
}

// prepare writes what the side reads at start into dir (once per run: a
// restart after SIGKILL finds the state it left).
func (s side) prepare(srv *sim.Server, dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "keys.pem"), srv.PublicKeyPEM(), 0o600); err != nil {
		return err
	}
	if s.name != sideCalld {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "calld.toml"), []byte(calldConfig(srv, dir)), 0o600)
}

func (s side) command(srv *sim.Server, dir string) *exec.Cmd {
	if s.name == sideCalld {
		return exec.Command(s.bin, append([]string{"serve", "--config", filepath.Join(dir, "calld.toml")}, s.args...)...)
	}
	return exec.Command(s.bin, append([]string{"-addr", srv.Addr(), "-dc", fmt.Sprint(srv.DC()),
		"-public-keys", filepath.Join(dir, "keys.pem"), "-session", filepath.Join(dir, "baseline.session")}, s.args...)...)
}

// start runs the side in dir, its stdout and stderr appended to
// dir/NAME.log, and waits until it is ready: calld's /v1/status says
// ready, the baseline printed "ready" (its updates manager has its state).
func (s side) start(srv *sim.Server, dir string) (*proc, error) { return s.launch(srv, dir) }

// restart is start for a side that ran in dir before: it also waits until
// the simulator answered the updates.getDifference each makes on the way
// up from a known state (calld: its stored state; the baseline: gotd's
// manager fetches one as it starts). calld is READY before it has
// connected: a quiet period counted from READY could end before it has
// fetched what was pushed while it was down.
func (s side) restart(srv *sim.Server, dir string) (*proc, error) {
	diffs := srv.Count(methodGetDiff)
	p, err := s.launch(srv, dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.WaitCount(ctx, methodGetDiff, diffs+1); err != nil {
		p.kill()
		return nil, fmt.Errorf("%s made no updates.getDifference after its restart: %w", s.name, err)
	}
	return p, nil
}

// launch starts the side and waits until it says it is ready.
func (s side) launch(srv *sim.Server, dir string) (*proc, error) {
	log, err := os.OpenFile(filepath.Join(dir, s.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: s.command(srv, dir), done: make(chan struct{}), log: log}
	ready := make(chan struct{})
	p.cmd.Stderr, p.cmd.Stdout = log, log
	if s.name == sideBaseline {
		p.cmd.Stdout = &lineWatcher{want: "ready", ready: ready, w: log}
	}
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	if s.name == sideCalld {
		go waitStatus(filepath.Join(dir, "calld.sock"), ready, p.done)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready (%s): see %s", s.name, p.cmd.ProcessState, log.Name())
	case <-time.After(readyTimeout):
		p.kill()
		return nil, fmt.Errorf("%s not ready after %s", s.name, readyTimeout)
	}
}

// lineWatcher passes what is written to w and closes ready at the first
// line equal to want.
type lineWatcher struct {
	want  string
	ready chan struct{}
	w     io.Writer
	line  []byte
	seen  bool
}

func (l *lineWatcher) Write(b []byte) (int, error) {
	for _, c := range b {
		if l.seen {
			break
		}
		if c != '\n' {
			l.line = append(l.line, c)
			continue
		}
		if strings.TrimSpace(string(l.line)) == l.want {
			l.seen = true
			close(l.ready)
		}
		l.line = l.line[:0]
	}
	return l.w.Write(b)
}

// waitStatus polls calld's control socket until /v1/status says ready or
// the process is gone.
func waitStatus(socket string, ready chan<- struct{}, done <-chan struct{}) {
	cl := client.New(socket)
	defer cl.Close()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cl.Status(ctx)
		cancel()
		if err == nil && st.Ready {
			close(ready)
			return
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.log.Close()
}

// stop sends SIGTERM and waits (then SIGKILL after 30 s).
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		return errors.New("did not stop within 30 s of SIGTERM: killed")
	}
	p.log.Close()
	return nil
}
