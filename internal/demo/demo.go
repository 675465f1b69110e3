// Package demo is calld's self-contained tour (`calld demo`): it starts the
// embedded simulated Telegram and a real daemon on a temporary state file
// and socket, drives scripted call traffic through the control socket, and
// prints what happens and a summary table. It needs no config, network or
// credentials.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/gotd/neo"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/daemon"
	"github.com/calld/calld/internal/group"
	"github.com/calld/calld/internal/sim"
)

// Options tune the tour; the zero value is the real demo.
type Options struct {
	// Dir holds the state file and the socket; default a temporary
	// directory removed afterwards.
	Dir string
	// Talk is how long the answered outgoing call lasts (default 2 s).
	Talk time.Duration
	// RingTimeout is the daemon's ring timeout (default 2 s).
	RingTimeout time.Duration
	// Logs receives the daemon's JSON logs (default discarded).
	Logs io.Writer
	// Clock, if set, is the daemon's clock, and the tour moves it instead
	// of waiting: the talk lasts exactly Talk and the ring timeout fires
	// when the tour moves past it (tests); nil: real time.
	Clock *neo.Time
	// AfterTour, if set, runs after the summary while the daemon still
	// serves, with its control socket (tests scrape /metrics there); its
	// error is the tour's.
	AfterTour func(ctx context.Context, socket string) error
}

// tour is one run of the demo.
type tour struct {
	w      io.Writer
	opts   Options
	sim    *sim.Server
	cfg    config.Config
	d      *daemon.Main
	stop   context.CancelFunc // ends the daemon's run
	done   chan error         // the daemon's Run's error
	tasks  *group.Group       // the daemon's Run and the journal follower
	client *client.Client
	events chan calld.Event
	peers  map[int64]string
	// lastSeq is the last journal seq the tour has read.
	lastSeq uint64
	start   time.Time
}

// Run runs the tour, writing a readable account to w.
func Run(ctx context.Context, w io.Writer, opts Options) (err error) {
	if opts.Talk == 0 {
		opts.Talk = 2 * time.Second
	}
	if opts.RingTimeout == 0 {
		opts.RingTimeout = 2 * time.Second
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "calld-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts.Dir = dir
	}
	t := &tour{w: w, opts: opts, peers: map[int64]string{}, start: time.Now()}

	t.say("calld demo: a simulated Telegram (real MTProto over loopback), the daemon, and scripted calls.")
	srv, err := sim.New(sim.Options{Authorized: true, SignalingPayloads: 3})
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	if err := srv.Listen(ctx, "127.0.0.1:0"); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer srv.Close()
	t.sim = srv
	t.say("simulated Telegram listening on %s (DC %d)", srv.Addr(), srv.DC())
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		t.peers[srv.AddPeer(name)] = "@" + name
	}

	cfg := config.Default()
	cfg.State.Path = filepath.Join(opts.Dir, "calld.db")
	cfg.Control.Socket = filepath.Join(opts.Dir, "calld.sock")
	cfg.Log.Format = config.FormatJSON
	cfg.Policy.RingTimeout = config.Duration{Duration: opts.RingTimeout}
	t.cfg = cfg

	if err := t.startDaemon(ctx); err != nil {
		return err
	}
	defer func() {
		if t.stop != nil {
			if serr := t.stopDaemon(); err == nil {
				err = serr
			}
		}
	}()

	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"1. An incoming call, refused by a person", t.refused},
		{"2. An incoming call, accepted on another device", t.elsewhere},
		{"3. An outgoing call, answered, then hung up", t.answered},
		{"4. A second incoming call while busy: refused by policy", t.busy},
		{"5. An incoming call nobody answers: ring timeout", t.ringTimeout},
		{"6. The daemon restarts in the middle of a call", t.restart},
	}
	for _, s := range steps {
		t.say("")
		t.say("%s", s.title)
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := s.run(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", s.title, err)
		}
	}
	return t.finish(ctx)
}

// finish prints the summary, then runs Options.AfterTour while the
// daemon still serves.
func (t *tour) finish(ctx context.Context) error {
	if err := t.summary(ctx); err != nil {
		return err
	}
	if t.opts.AfterTour != nil {
		return t.opts.AfterTour(ctx, t.cfg.Control.Socket)
	}
	return nil
}

// wait lets d pass: on the injected clock if any, else in real time.
func (t *tour) wait(d time.Duration) {
	if t.opts.Clock != nil {
		t.opts.Clock.Travel(d)
		return
	}
	time.Sleep(d)
}

func (t *tour) say(format string, args ...any) {
	fmt.Fprintf(t.w, format+"\n", args...)
}

// startDaemon runs a daemon on the tour's state and waits until it
// serves, following its event stream.
func (t *tour) startDaemon(ctx context.Context) error {
	d := daemon.New(t.cfg)
	d.Stderr = t.opts.Logs
	if t.opts.Clock != nil {
		d.Clock = t.opts.Clock
	}
	d.Sim = &daemon.SimTarget{Addr: t.sim.Addr(), DC: t.sim.DC(), PublicKey: t.sim.PublicKeyPEM()}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	tasks := group.New(nil)
	tasks.Go(func() error { done <- d.Run(runCtx); return nil })
	t.d, t.stop, t.done, t.tasks = d, stop, done, tasks
	select {
	case <-d.Ready():
	case err := <-done:
		done <- err // stopDaemon reads it
		_ = t.stopDaemon()
		return fmt.Errorf("daemon: %w", err)
	case <-time.After(30 * time.Second):
		_ = t.stopDaemon()
		return fmt.Errorf("daemon not ready after 30s")
	}
	t.client = client.New(t.cfg.Control.Socket)
	st, err := t.client.Status(ctx)
	if err != nil {
		return err
	}
	t.say("daemon ready: socket %s, state %s; logged in as user %d; pts=%d seq=%d",
		t.cfg.Control.Socket, t.cfg.State.Path, st.Telegram.SelfID, st.Updates.Pts, st.Updates.Seq)
	// Follow the journal from where the previous daemon left off.
	if t.events == nil {
		t.events = make(chan calld.Event, 1024)
	}
	since := t.lastSeq
	events := t.events
	tasks.Go(func() error {
		_ = t.client.Events(runCtx, client.EventsOptions{Replay: true, Since: since, Follow: true},
			func(ev calld.Event) error {
				select {
				case events <- ev:
					return nil
				case <-runCtx.Done():
					return runCtx.Err()
				}
			})
		return nil
	})
	return nil
}

// stopDaemon stops the daemon and waits for its Run and the journal
// follower.
func (t *tour) stopDaemon() error {
	t.stop()
	err := <-t.done
	t.tasks.Wait(context.Background())
	t.stop = nil
	return err
}

// waitState waits for the journal to show call id entering state.
func (t *tour) waitState(ctx context.Context, id int64, state calld.State) error {
	for {
		select {
		case ev := <-t.events:
			t.lastSeq = ev.Seq
			if ev.CallID == id {
				t.say("   event #%d  call %d: %s -> %s", ev.Seq, id, orDash(ev.From), ev.To)
				if ev.To == string(state) {
					return nil
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("call %d did not reach %s: %w", id, state, ctx.Err())
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "(new)"
	}
	return s
}

func (t *tour) showEnd(c calld.Call) {
	t.say("   => ended: reason=%s ended_by=%s duration=%ds video=%v", orNone(string(c.Reason)), c.EndedBy, c.Duration, c.Video)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// discardSeen prints what the simulated Telegram recorded of call id's
// phone.discardCall.
func (t *tour) discardSeen(id int64) {
	info, ok := t.sim.Call(id)
	if !ok || info.DiscardedBy != sim.BySelf {
		t.say("   Telegram saw no phone.discardCall from us")
		return
	}
	t.say("   Telegram received phone.discardCall(reason=%s, duration=%d, connection_id=%d, video=%v)",
		info.Reason, info.Duration, info.ConnectionID, info.Video)
}

func (t *tour) peer(name string) int64 {
	for id, n := range t.peers {
		if n == "@"+name {
			return id
		}
	}
	return 0
}

func (t *tour) refused(ctx context.Context) error {
	id, err := t.sim.IncomingCall(t.peer("alice"), false)
	if err != nil {
		return err
	}
	t.say("   @alice calls us (call %d)", id)
	if err := t.waitState(ctx, id, calld.StateRinging); err != nil {
		return err
	}
	t.say("   we refuse it: calld discard %d", id)
	c, err := t.client.Discard(ctx, id, calld.ReasonAuto)
	if err != nil {
		return err
	}
	t.discardSeen(id)
	t.showEnd(c)
	return nil
}

func (t *tour) elsewhere(ctx context.Context) error {
	id, err := t.sim.IncomingCall(t.peer("bob"), true)
	if err != nil {
		return err
	}
	t.say("   @bob video-calls us (call %d)", id)
	if err := t.waitState(ctx, id, calld.StateRinging); err != nil {
		return err
	}
	t.say("   ...and we answer on our phone instead")
	if err := t.sim.AcceptedElsewhere(id); err != nil {
		return err
	}
	if err := t.waitState(ctx, id, calld.StateEnded); err != nil {
		return err
	}
	c, err := t.client.Call(ctx, id)
	if err != nil {
		return err
	}
	t.showEnd(c)
	return nil
}

// placeActive places a call to peer and waits until it is active.
func (t *tour) placeActive(ctx context.Context, peer string) (calld.Call, error) {
	t.sim.SetPeerBehaviour(t.peer(peer), sim.Answer)
	t.say("   calld call @%s", peer)
	c, err := t.client.Place(ctx, "@"+peer, false)
	if err != nil {
		return c, err
	}
	if err := t.waitState(ctx, c.ID, calld.StateActive); err != nil {
		return c, err
	}
	media, err := t.client.Media(ctx, c.ID)
	if err != nil {
		return c, err
	}
	_, fp, _ := t.sim.CallKey(c.ID)
	t.say("   key exchange done: our key fingerprint %d, @%s's %d (match: %v)", media.KeyFingerprint, peer, fp, media.KeyFingerprint == fp)
	return c, nil
}

func (t *tour) answered(ctx context.Context) error {
	c, err := t.placeActive(ctx, "carol")
	if err != nil {
		return err
	}
	if cur, err := t.client.Call(ctx, c.ID); err == nil && len(cur.Connections) > 0 {
		relay := cur.Connections[0]
		if _, err := t.client.SetConnection(ctx, c.ID, relay.ID); err != nil {
			return err
		}
		t.say("   the media side reports relay %d (%s:%d) in use", relay.ID, relay.IP, relay.Port)
	}
	if err := t.relay(ctx, c.ID); err != nil {
		return err
	}
	t.say("   talking for %s...", t.opts.Talk)
	t.wait(t.opts.Talk)
	t.say("   we hang up: calld discard %d", c.ID)
	c, err = t.client.Discard(ctx, c.ID, calld.ReasonAuto)
	if err != nil {
		return err
	}
	t.discardSeen(c.ID)
	t.showEnd(c)
	if c.NeedRating {
		if _, err := t.client.Rate(ctx, c.ID, 5, ""); err != nil {
			return err
		}
		t.say("   Telegram asks for a rating (need_rating): calld rate %d 5 -> phone.setCallRating", c.ID)
	}
	return nil
}

// relay shows the signaling relay: @carol's media engine sends three
// payloads once the call is active, ours sends one and hers echoes it.
func (t *tour) relay(ctx context.Context, id int64) error {
	read := func(since uint64, n int) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got := 0
		err := t.client.Signaling(rctx, id, since, true, func(p calld.SignalingPayload) error {
			t.say("   signaling from @carol's media engine: #%d, %d bytes (calld signaling %d)", p.Seq, len(p.Data), id)
			if got++; got == n {
				return errEnough
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("the signaling stream ended after %d payloads", got)
		}
		return err
	}
	if err := read(0, 3); err != nil {
		return err
	}
	ours := []byte("our engine's candidates")
	if err := t.client.SendSignaling(ctx, id, ours); err != nil {
		return err
	}
	t.say("   our media engine answers: %d bytes -> phone.sendSignalingData (@carol's engine got them: %v)",
		len(ours), len(t.sim.SignalingReceived(id)) == 1)
	return read(3, 1)
}

var errEnough = errors.New("enough")

func (t *tour) busy(ctx context.Context) error {
	c, err := t.placeActive(ctx, "carol")
	if err != nil {
		return err
	}
	id, err := t.sim.IncomingCall(t.peer("dave"), false)
	if err != nil {
		return err
	}
	t.say("   @dave calls us meanwhile (call %d)", id)
	if err := t.waitState(ctx, id, calld.StateEnded); err != nil {
		return err
	}
	d, err := t.client.Call(ctx, id)
	if err != nil {
		return err
	}
	t.discardSeen(id)
	t.showEnd(d)
	cur, err := t.client.Call(ctx, c.ID)
	if err != nil {
		return err
	}
	t.say("   the call with @carol is still %s; we hang up", cur.State)
	c, err = t.client.Discard(ctx, c.ID, calld.ReasonAuto)
	if err != nil {
		return err
	}
	t.showEnd(c)
	return nil
}

func (t *tour) ringTimeout(ctx context.Context) error {
	id, err := t.sim.IncomingCall(t.peer("erin"), false)
	if err != nil {
		return err
	}
	t.say("   @erin calls us (call %d); nobody answers for %s", id, t.opts.RingTimeout)
	if t.opts.Clock != nil {
		// The ring deadline is set as the call rings: move the clock past
		// it only then.
		if err := t.waitState(ctx, id, calld.StateRinging); err != nil {
			return err
		}
		t.opts.Clock.Travel(t.opts.RingTimeout + time.Millisecond)
	}
	if err := t.waitState(ctx, id, calld.StateEnded); err != nil {
		return err
	}
	c, err := t.client.Call(ctx, id)
	if err != nil {
		return err
	}
	t.discardSeen(id)
	t.showEnd(c)
	return nil
}

func (t *tour) restart(ctx context.Context) error {
	c, err := t.placeActive(ctx, "carol")
	if err != nil {
		return err
	}
	before, err := t.client.Media(ctx, c.ID)
	if err != nil {
		return err
	}
	t.say("   the daemon stops (as on `systemctl restart calld`) with the call active")
	if err := t.stopDaemon(); err != nil {
		return err
	}
	t.say("   ...and starts again on the same state file")
	if err := t.startDaemon(ctx); err != nil {
		return err
	}
	c, err = t.client.Call(ctx, c.ID)
	if err != nil {
		return err
	}
	after, err := t.client.Media(ctx, c.ID)
	if err != nil {
		return err
	}
	same := bytes.Equal(before.Key, after.Key) && before.KeyFingerprint == after.KeyFingerprint
	t.say("   the call goes on: state %s, same media key: %v", c.State, same)
	if c.State != calld.StateActive || !same {
		return fmt.Errorf("call %d after the restart: %s, same key %v", c.ID, c.State, same)
	}
	t.say("   we hang up: calld discard %d", c.ID)
	c, err = t.client.Discard(ctx, c.ID, calld.ReasonAuto)
	if err != nil {
		return err
	}
	t.discardSeen(c.ID)
	t.showEnd(c)
	return nil
}

// summary prints every call and compares the updates state with the
// simulator's.
func (t *tour) summary(ctx context.Context) error {
	calls, err := t.client.Calls(ctx, true)
	if err != nil {
		return err
	}
	t.say("")
	t.say("Summary")
	tw := tabwriter.NewWriter(t.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tDIRECTION\tPEER\tSTATE\tREASON\tENDED BY\tDURATION")
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%ds\n", c.ID, c.Direction, t.peers[c.PeerID], c.State, orNone(string(c.Reason)), c.EndedBy, c.Duration)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	st, err := t.client.Status(ctx)
	if err != nil {
		return err
	}
	pts, qts, seq, _ := t.sim.State()
	inStep := st.Updates.Pts == pts && st.Updates.Qts == qts && st.Updates.Seq == seq
	t.say("")
	t.say("updates state: calld pts=%d qts=%d seq=%d; Telegram pts=%d qts=%d seq=%d (in step: %v)",
		st.Updates.Pts, st.Updates.Qts, st.Updates.Seq, pts, qts, seq, inStep)
	t.say("phone.discardCall requests Telegram received: %d", t.sim.Count("phone.discardCall"))
	t.say("done in %s", time.Since(t.start).Round(100*time.Millisecond))
	if !inStep {
		return fmt.Errorf("updates state out of step with the server")
	}
	return nil
}
