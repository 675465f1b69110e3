package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/mtproto"
	"github.com/calld/calld/internal/mtproto/callkey"
	"github.com/calld/calld/internal/mtproto/middleware"
)

// rpcTimeout bounds one RPC including the MTProto client's own retries
// (whose budget is about 60 s), on the manager's clock.
const rpcTimeout = 90 * time.Second

// errRPCTimeout is the cancel cause of an RPC whose rpcTimeout ran out.
var errRPCTimeout = errors.New("no answer from Telegram in time")

// rpcContext bounds one RPC by rpcTimeout on the manager's clock (a fake
// one in tests), under the loop's context (rpcDeadlines).
func (m *Manager) rpcContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(m.ctx)
	remove := m.rpcTimeouts.add(m.clock.Now().Add(rpcTimeout), cancel)
	return ctx, func() {
		remove()
		cancel(context.Canceled)
	}
}

// rpcError classifies the error of an RPC run under ctx: one that ran out
// of time is `timeout` (504) while connected, `unavailable` (503) when the
// connection is down (CONTRACT §5.2); the RPC's error stays in the chain.
func (m *Manager) rpcError(ctx context.Context, method string, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), errRPCTimeout) {
		return err
	}
	if !m.connected.Load() {
		return fmt.Errorf("%w (%w): %w", calld.Errorf(calld.EUNAVAILABLE, "%s: not connected to Telegram", method), errRPCTimeout, err)
	}
	return fmt.Errorf("%w (%w): %w", calld.Errorf(calld.ETIMEOUT, "%s: no answer from Telegram in %s", method, rpcTimeout), errRPCTimeout, err)
}

// rpc queues an fsm action: it runs on the RPC pool (runRPC) after the
// step that asked for it is committed, and posts its outcome back to the
// loop.
// An outcome posted after the stop began is not applied (Run): an RPC cut
// by the shutdown is not its answer, and the restart goes on from what was
// persisted (resumeRestored).
func (m *Manager) rpc(c *call, a fsm.Action) {
	var run func(ctx context.Context)
	switch a := a.(type) {
	case fsm.SendReceived:
		run = m.sendReceived(c)
	case fsm.SendAccept:
		run = m.sendAccept(c)
	case fsm.SendConfirm:
		run = m.sendConfirm(c)
	case fsm.SendDiscard:
		run = m.sendDiscard(c, a)
	default:
		m.log.Error().Str(logging.FieldCallID, itoa(c.m.Call().ID)).Msgf("unknown fsm action %T", a)
	}
	if run == nil {
		return
	}
	m.effects = append(m.effects, func() {
		// The call may have ended (a remote discard, in the same
		// batch) since the action was decided: then there is nothing
		// to send (calls.md §5(f) 8).
		if !c.m.Call().State.Live() {
			return
		}
		m.runRPC(func() {
			if c.over.Load() {
				return // the call ended while the RPC waited in the queue
			}
			ctx, cancel := m.rpcContext()
			defer cancel()
			run(ctx)
		})
	})
}

// rpcStack is about the stack an RPC's goroutine reaches in gotd (its
// encryption and the middlewares): growStack, at the start of each RPC
// worker (rpcWorker), has it at once.
const rpcStack = 16 << 10

// growStack makes the calling goroutine's stack rpcStack deep while the
// goroutine is still shallow. A goroutine starts small and its stack is
// copied at each doubling, every frame on it walked and adjusted; an RPC
// goroutine doubled it deep inside gotd, two or three times per call
// (copystack was 9 % of calld's CPU in a 5,000-call burst, bench/ab).
// Copied here, it has one frame to adjust.
//
//go:noinline
func growStack() {
	var frame [rpcStack - 2048]byte
	touchStack(frame[:])
}

// touchStack keeps growStack's frame from being optimised away.
//
//go:noinline
func touchStack(b []byte) { b[len(b)-1] = 0 }

// inputCall is the call as RPCs name it.
func inputCall(c *call) tg.InputPhoneCall {
	rec := c.m.Call()
	return tg.InputPhoneCall{ID: rec.ID, AccessHash: rec.AccessHash}
}

// sendReceived is phone.receivedCall: acknowledged, the call rings.
func (m *Manager) sendReceived(c *call) func(context.Context) {
	peer, tgc := inputCall(c), m.cfg.Telegram
	return func(ctx context.Context) {
		err := m.rpcError(ctx, "phone.receivedCall", tgc.ReceivedCall(ctx, peer))
		_ = m.post(func() {
			if err == nil {
				m.apply(c, fsm.Local{Action: fsm.Acknowledge})
				return
			}
			m.logCall(zerolog.WarnLevel, peer.ID).Str(logging.FieldErr, err.Error()).Msg("phone.receivedCall failed")
			m.apply(c, fsm.RPCResult{Method: fsm.MethodReceived, Err: err})
		})
	}
}

// sendAccept is phone.acceptCall with our persisted g_b, or, before we
// have one, messages.getDhConfig to make it: g_b is persisted before it
// is sent, so a restart sends the same g_b again rather than a key the
// server never saw.
func (m *Manager) sendAccept(c *call) func(context.Context) {
	tgc := m.cfg.Telegram
	if in := c.secrets.incoming; in != nil {
		protocol := c.secrets.protocol
		if protocol.MaxLayer == 0 {
			protocol = m.cfg.Protocol
		}
		return func(ctx context.Context) {
			res, err := tgc.SendAccept(ctx, in, protocol)
			err = m.rpcError(ctx, "phone.acceptCall", err)
			_ = m.post(func() { m.accepted(c, res, err) })
		}
	}
	peer, gAHash := inputCall(c), c.secrets.gAHash
	return func(ctx context.Context) {
		in, err := tgc.PrepareAccept(ctx, peer, gAHash)
		err = m.rpcError(ctx, "messages.getDhConfig", err)
		_ = m.post(func() {
			if err != nil {
				m.accepted(c, nil, err)
				return
			}
			c.secrets.incoming = in
			m.secretsChanged(c)
			m.rpc(c, fsm.SendAccept{})
		})
	}
}

// sendConfirm is phone.confirmCall, which completes the key exchange of
// an outgoing call; nil (and the call failed) when our half of the
// exchange did not survive a restart.
func (m *Manager) sendConfirm(c *call) func(context.Context) {
	out, acc := c.secrets.outgoing, c.secrets.accepted
	if out == nil || acc == nil {
		m.apply(c, fsm.Local{Action: fsm.Fail, Message: "key exchange state lost in a restart"})
		return nil
	}
	tgc := m.cfg.Telegram
	return func(ctx context.Context) {
		key, fp, res, err := tgc.ConfirmCall(ctx, out, acc)
		err = m.rpcError(ctx, "phone.confirmCall", err)
		_ = m.post(func() {
			switch {
			case err == nil:
				if p, ok := res.PhoneCall.(*tg.PhoneCall); ok {
					c.secrets.setKey(Key{Bytes: key, Fingerprint: fp}, p)
					m.secretsChanged(c)
				}
				m.apply(c, fsm.RPCResult{Method: fsm.MethodConfirm})
				m.remote(c, res.PhoneCall, true)
			case errors.Is(err, mtproto.ErrCallDiscarded) && res != nil:
				m.remote(c, res.PhoneCall, true)
			default:
				m.failed(c, fsm.MethodConfirm, err)
			}
		})
	}
}

// sendDiscard is phone.discardCall, logged when it is sent and when it
// is answered (call.discard), both on the RPC's goroutine: a discard rpc
// skips (the call ended meanwhile) or a stop refuses is never "sent".
func (m *Manager) sendDiscard(c *call, a fsm.SendDiscard) func(context.Context) {
	d := discardOf(inputCall(c), a)
	tgc := m.cfg.Telegram
	return func(ctx context.Context) {
		if ctx.Err() != nil {
			return // the stop came first: not sent
		}
		m.logDiscard(d, "sent").Msg("phone.discardCall sent")
		_, err := tgc.DiscardCall(ctx, d)
		if err != nil && ctx.Err() != nil && !errors.Is(context.Cause(ctx), errRPCTimeout) {
			// Cut by the stop: not an answer (rpc), no line; the
			// restart goes on from the persisted hanging_up.
			return
		}
		err = m.rpcError(ctx, "phone.discardCall", err)
		// Logged here, not in the loop: the call may already have ended
		// from the answer's Updates (and its requests been answered), and
		// a stop from then on drops this goroutine's post, never the line
		// (Run waits for its RPCs before it returns).
		result := "ok"
		if err != nil {
			result = errorType(err)
		}
		m.logDiscard(d, result).Msg("phone.discardCall answered")
		_ = m.post(func() {
			if errors.Is(err, errRPCTimeout) || middleware.NotLoggedIn(err) {
				// No answer, or one from a session that is not logged
				// in (the server did not execute it): sent again.
				m.discardTimedOut(c, err)
				return
			}
			c.discardErr = err
			// A successful result's Updates may be held by the engine
			// behind a getDifference: apply the completion after them,
			// so the call ends from its Updates.
			m.afterUpdates(err == nil, func() {
				m.apply(c, fsm.RPCResult{Method: fsm.MethodDiscard, Err: err})
			})
		})
	}
}

// logDiscard is a call.discard log line for d: result is "sent" when
// the discard is sent, then "ok" or the error type when it is answered.
func (m *Manager) logDiscard(d mtproto.Discard, result string) *zerolog.Event {
	return m.log.Info().Str(logging.FieldEvent, logging.EventCallDiscard).
		Str(logging.FieldCallID, itoa(d.Peer.ID)).Str(logging.FieldReason, d.Reason).
		Int(logging.FieldDuration, d.Duration).Str(logging.FieldConnectionID, itoa(d.ConnectionID)).
		Bool(logging.FieldVideo, d.Video).Str(logging.FieldResult, result)
}

// discardRetry is the first wait before our phone.discardCall is sent
// again after a send ran out of time; it doubles up to discardRetryMax.
const (
	discardRetry    = 5 * time.Second
	discardRetryMax = 5 * time.Minute
)

// discardTimedOut: our phone.discardCall got no answer in time, or a 401
// (the session was logged out while calld runs: the server did not
// execute it). No answer is recorded (the server may never have executed
// it, and the peer would ring on): the call stays hanging_up with its
// decided discard, the requests waiting on it are answered with the
// time-out (or the 401) and the call as it stands, and the same discard is sent again (Resend, which the machine
// honours once per time-out) after a backoff on the manager's clock, until
// an answer is recorded or the call ends remotely.
func (m *Manager) discardTimedOut(c *call, err error) {
	if st := m.apply(c, fsm.RPCResult{Method: fsm.MethodDiscard, Err: err, TimedOut: true}); st.Err != nil || st.Ignored != "" {
		return
	}
	ws := c.waiters
	c.waiters = nil
	answer := telegramError("phone.discardCall", err) // the time-out is a calld.Error already
	for _, w := range ws {
		m.afterCommit(c, w.done, answer)
	}
	wait := discardRetry << min(c.discardTimeouts, 6)
	c.discardTimeouts++
	if wait > discardRetryMax {
		wait = discardRetryMax
	}
	m.goRPC(func() {
		t := m.clock.Timer(wait)
		defer t.Stop()
		select {
		case <-t.C():
		case <-m.ctx.Done():
			return
		}
		_ = m.post(func() {
			if c.m.Call().State == calld.StateHangingUp {
				m.apply(c, fsm.Local{Action: fsm.Resend})
			}
		})
	})
}

// accepted applies the outcome of our acceptCall and answers the accept
// request, if one waits.
func (m *Manager) accepted(c *call, res *tg.PhonePhoneCall, err error) {
	done := c.onAccept
	c.onAccept = nil
	resent := c.resentAccept
	c.resentAccept = false
	switch {
	case err != nil && resent && tgerr.Is(err, "CALL_ALREADY_ACCEPTED"):
		// Our first accept, sent before a restart, was executed: its
		// phoneCall completes the exchange (or the receive timer ends
		// the call).
		m.logCall(zerolog.InfoLevel, c.m.Call().ID).Msg("phone.acceptCall sent again after a restart: the first one was executed")
	case err != nil:
		m.failed(c, fsm.MethodAccept, err)
	default:
		m.apply(c, fsm.RPCResult{Method: fsm.MethodAccept})
		m.remote(c, res.PhoneCall, true)
	}
	early := c.secrets.early
	c.secrets.early = nil
	for _, pc := range early {
		m.remote(c, pc, false)
	}
	if done != nil {
		m.afterCommit(c, done, telegramError("phone.acceptCall", err))
	}
}

// failed feeds an RPC error of the key exchange to the call.
func (m *Manager) failed(c *call, method fsm.Method, err error) {
	m.logCall(zerolog.WarnLevel, c.m.Call().ID).Str(logging.FieldMethod, string(method)).Str(logging.FieldErr, err.Error()).
		Msg("call RPC failed")
	if errors.Is(err, callkey.ErrKeyMismatch) {
		m.apply(c, fsm.Local{Action: fsm.Fail, Message: err.Error()})
		return
	}
	m.apply(c, fsm.RPCResult{Method: method, Err: err})
}
