package mtproto

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
	budget := r.Budget
	if budget <= 0 {
		budget = DefaultRetryBudget
	}
	clk := r.Clock
	if clk == nil {
		clk = clock.System
	}
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		start := clk.Now()
		backoff := time.Second
		for attempt := 1; ; attempt++ {
			err := next.Invoke(ctx, input, output)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
			select {
			case <-r.Stop:
				return fmt.Errorf("%s: %w: %w", methodName(input), ErrClosed, err)
			default:
			}
			wait, isBackoff, ok := retryDelay(err, backoff)
			if !ok {
				return err
			}
			elapsed := clk.Now().Sub(start)
			if elapsed+wait > budget {
				return fmt.Errorf("%s: %w (%s) after %d attempts in %s, next wait %s: %w",
					methodName(input), ErrRetryBudget, budget, attempt, elapsed, wait, err)
			}
			r.Log.Debug().Str("event", "mtproto.retry").Str("method", methodName(input)).
				Int("attempt", attempt).Dur("wait", wait).AnErr("err", err).Msg("retrying RPC")
			t := clk.Timer(wait)
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: retry wait cancelled: %w (last error: %w)", methodName(input), ctx.Err(), err)
			case <-r.Stop:
				t.Stop()
				return fmt.Errorf("%s: %w: %w", methodName(input), ErrClosed, err)
			}
			if isBackoff {
				backoff *= 2
			}
			if _, isRPC := tgerr.As(err); isRPC || r.Connected == nil {
				continue
			}
			up := r.Connected()
			if up == nil {
				continue
			}
			elapsed = clk.Now().Sub(start)
			if elapsed >= budget {
				return fmt.Errorf("%s: %w (%s) after %d attempts in %s, not connected: %w",
					methodName(input), ErrRetryBudget, budget, attempt, elapsed, err)
			}
			r.Log.Debug().Str("event", "mtproto.retry").Str("method", methodName(input)).
				Msg("waiting for the connection")
			bt := clk.Timer(budget - elapsed)
			select {
			case <-up:
				bt.Stop()
			case <-bt.C():
				return fmt.Errorf("%s: %w (%s) after %d attempts, not connected: %w",
					methodName(input), ErrRetryBudget, budget, attempt, err)
			case <-ctx.Done():
				bt.Stop()
				return fmt.Errorf("%s: wait for connection cancelled: %w (last error: %w)", methodName(input), ctx.Err(), err)
			case <-r.Stop:
				bt.Stop()
				return fmt.Errorf("%s: %w: %w", methodName(input), ErrClosed, err)
			}
		}
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
