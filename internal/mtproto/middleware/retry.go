package middleware

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"

	"github.com/calld/calld/internal/logging"
)

// DefaultRetryBudget is the total time Retry may spend waiting for one RPC.
const DefaultRetryBudget = 60 * time.Second

// Retry is the retry middleware (a telegram.Middleware):
//
//   - FLOOD_WAIT_X (420): wait X seconds (at least 1 s), then retry;
//   - any RPC error with code >= 500 (CALL_OCCUPY_FAILED, INTERNAL, ...) and
//     any non-RPC error while the caller's context is alive (a cut
//     connection, a dead engine): back off 1, 2, 4, 8 ... seconds, then retry;
//   - anything else (4xx, 401, the caller's context) returns at once.
//
// After a network error's backoff, when Connected reports the connection
// down, the retry also waits until it is up again (gotd reconnects by
// itself; an RPC sent before that fails at once on the dead connection).
//
// All waits of one RPC together stay within Budget, measured on Clock from
// the first attempt: a wait that would end past the budget is not started (a
// wait for the connection is cut at the budget), and the error then matches
// ErrRetryBudget and wraps the last attempt's error (errors.As still reaches
// its *tgerr.Error). Cancelling the caller's context or closing Stop ends a
// wait at once.
type Retry struct {
	Budget time.Duration   // 0: DefaultRetryBudget
	Clock  clock.Clock     // nil: clock.System
	Log    zerolog.Logger  // one debug line per retry
	Stop   <-chan struct{} // optional; closed when the client stops
	// Connected, optional, returns nil while the connection is up, else a
	// channel closed once it is up again.
	Connected func() <-chan struct{}
}

// Handle implements telegram.Middleware.
func (r Retry) Handle(next tg.Invoker) telegram.InvokeFunc {
	if r.Budget <= 0 {
		r.Budget = DefaultRetryBudget
	}
	if r.Clock == nil {
		r.Clock = clock.System
	}
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		rpc := retrying{Retry: r, ctx: ctx, input: input, start: r.Clock.Now(), backoff: time.Second}
		for rpc.attempt = 1; ; rpc.attempt++ {
			err := next.Invoke(ctx, input, output)
			if err == nil {
				return nil
			}
			if err := rpc.again(err); err != nil {
				return err
			}
		}
	}
}

// retrying is one RPC under Retry: its attempts so far and their waits.
type retrying struct {
	Retry
	ctx     context.Context
	input   bin.Encoder   // the request, named in errors and logs
	start   time.Time     // of the first attempt, on Clock
	backoff time.Duration // the next exponential backoff
	attempt int
}

// again decides on the failed attempt's err: nil once it has waited for
// the next attempt, else the error the RPC returns.
func (rpc *retrying) again(err error) error {
	if rpc.ctx.Err() != nil {
		return err
	}
	select {
	case <-rpc.Stop:
		return rpc.closed(err)
	default:
	}
	wait, isBackoff, ok := retryDelay(err, rpc.backoff)
	if !ok {
		return err
	}
	if err := rpc.waitRetry(wait, err); err != nil {
		return err
	}
	if isBackoff {
		rpc.backoff *= 2
	}
	if _, isRPC := tgerr.As(err); isRPC || rpc.Connected == nil {
		return nil
	}
	return rpc.waitConnection(err)
}

// waitRetry waits d before the next attempt, if that stays within the
// budget.
func (rpc *retrying) waitRetry(d time.Duration, err error) error {
	elapsed := rpc.Clock.Now().Sub(rpc.start)
	if elapsed+d > rpc.Budget {
		return fmt.Errorf("%s: %w (%s) after %d attempts in %s, next wait %s: %w",
			methodName(rpc.input), ErrRetryBudget, rpc.Budget, rpc.attempt, elapsed, d, err)
	}
	rpc.Log.Debug().Str(logging.FieldEvent, logging.EventMTProtoRetry).Str(logging.FieldMethod, methodName(rpc.input)).
		Int(logging.FieldAttempt, rpc.attempt).Dur(logging.FieldWait, d).AnErr(logging.FieldErr, err).Msg("retrying RPC")
	switch rpc.sleep(d, nil) {
	case wokeCancelled:
		return fmt.Errorf("%s: retry wait cancelled: %w (last error: %w)", methodName(rpc.input), rpc.ctx.Err(), err)
	case wokeStopped:
		return rpc.closed(err)
	}
	return nil
}

// waitConnection waits, after a network error's backoff, until the
// connection is up again, within what is left of the budget.
func (rpc *retrying) waitConnection(err error) error {
	up := rpc.Connected()
	if up == nil {
		return nil
	}
	elapsed := rpc.Clock.Now().Sub(rpc.start)
	if elapsed >= rpc.Budget {
		return fmt.Errorf("%s: %w (%s) after %d attempts in %s, not connected: %w",
			methodName(rpc.input), ErrRetryBudget, rpc.Budget, rpc.attempt, elapsed, err)
	}
	rpc.Log.Debug().Str(logging.FieldEvent, logging.EventMTProtoRetry).Str(logging.FieldMethod, methodName(rpc.input)).
		Msg("waiting for the connection")
	switch rpc.sleep(rpc.Budget-elapsed, up) {
	case wokeTimer:
		return fmt.Errorf("%s: %w (%s) after %d attempts, not connected: %w",
			methodName(rpc.input), ErrRetryBudget, rpc.Budget, rpc.attempt, err)
	case wokeCancelled:
		return fmt.Errorf("%s: wait for connection cancelled: %w (last error: %w)", methodName(rpc.input), rpc.ctx.Err(), err)
	case wokeStopped:
		return rpc.closed(err)
	}
	return nil
}

func (rpc *retrying) closed(err error) error {
	return fmt.Errorf("%s: %w: %w", methodName(rpc.input), errClosed, err)
}

// woke says what ended a sleep.
type woke int

const (
	wokeTimer     woke = iota // the duration passed
	wokeUp                    // the up channel closed
	wokeCancelled             // the caller's context ended
	wokeStopped               // Stop closed
)

// sleep waits d on Clock, or until up (nil: never) is closed, the caller's
// context ends or Stop is closed, whichever comes first.
func (rpc *retrying) sleep(d time.Duration, up <-chan struct{}) woke {
	t := rpc.Clock.Timer(d)
	select {
	case <-t.C():
		return wokeTimer
	case <-up:
		t.Stop()
		return wokeUp
	case <-rpc.ctx.Done():
		t.Stop()
		return wokeCancelled
	case <-rpc.Stop:
		t.Stop()
		return wokeStopped
	}
}

// retryDelay says whether err is retried and after how long; isBackoff marks
// the exponential kind (as opposed to a flood wait).
func retryDelay(err error, backoff time.Duration) (wait time.Duration, isBackoff, ok bool) {
	if rpcErr, isRPC := tgerr.As(err); isRPC {
		switch {
		case rpcErr.IsType(tgerr.ErrFloodWait):
			wait = time.Duration(rpcErr.Argument) * time.Second
			if wait < time.Second {
				wait = time.Second
			}
			return wait, false, true
		case rpcErr.Code >= 500:
			return backoff, true, true
		}
		return 0, false, false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Not the caller's context (checked before): a gotd-internal
		// cancellation such as a connection being torn down.
		return backoff, true, true
	}
	var unexpected *bin.UnexpectedIDErr
	if errors.As(err, &unexpected) || isLocal(err) {
		return 0, false, false
	}
	return backoff, true, true
}

var (
	typesOnce sync.Once
	typeNames map[uint32]string
)

// methodName gives the TL name of an RPC request ("phone.discardCall").
func methodName(input bin.Encoder) string {
	t, ok := input.(interface{ TypeID() uint32 })
	if !ok {
		return fmt.Sprintf("%T", input)
	}
	typesOnce.Do(func() { typeNames = tg.TypesMap() })
	name, ok := typeNames[t.TypeID()]
	if !ok {
		return fmt.Sprintf("0x%08x", t.TypeID())
	}
	if i := strings.IndexByte(name, '#'); i >= 0 {
		name = name[:i]
	}
	return name
}
