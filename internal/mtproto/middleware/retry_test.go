package middleware

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
)

// scriptInvoker returns the scripted errors one per call (nil = success),
// then success, and records the clock time of each call.
type scriptInvoker struct {
	mu     sync.Mutex
	script []error
	clk    clock.Clock
	at     []time.Time
	onCall func(n int)
}

func (s *scriptInvoker) Invoke(ctx context.Context, _ bin.Encoder, _ bin.Decoder) error {
	s.mu.Lock()
	s.at = append(s.at, s.clk.Now())
	n := len(s.at)
	var err error
	if n <= len(s.script) {
		err = s.script[n-1]
	}
	f := s.onCall
	s.mu.Unlock()
	if f != nil {
		f(n)
	}
	return err
}

func (s *scriptInvoker) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

func rpcErr(code int, msg string) *tgerr.Error { return tgerr.New(code, msg) }

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func secs(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, x := range n {
		out[i] = time.Duration(x) * time.Second
	}
	return out
}

func TestRetry(t *testing.T) {
	occupy := rpcErr(500, "CALL_OCCUPY_FAILED")
	tests := []struct {
		name      string
		budget    time.Duration
		script    []error
		wantWaits []time.Duration
		wantCalls int
		wantErr   error  // errors.Is target; nil means success
		wantType  string // *tgerr.Error type reachable with errors.As
	}{
		{
			name:      "flood wait below budget",
			script:    []error{rpcErr(420, "FLOOD_WAIT_3")},
			wantWaits: []time.Duration{3 * time.Second},
			wantCalls: 2,
		},
		{
			name:      "flood wait 0 waits one second",
			script:    []error{rpcErr(420, "FLOOD_WAIT_0")},
			wantWaits: []time.Duration{time.Second},
			wantCalls: 2,
		},
		{
			name:      "flood wait above budget",
			script:    []error{rpcErr(420, "FLOOD_WAIT_61")},
			wantCalls: 1,
			wantErr:   ErrRetryBudget,
			wantType:  "FLOOD_WAIT",
		},
		{
			name:      "5xx backs off 1 2 4",
			script:    repeat(occupy, 3),
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			wantCalls: 4,
		},
		{
			name:      "network errors back off",
			script:    []error{io.ErrUnexpectedEOF, errors.New("engine forcibly closed: context canceled")},
			wantWaits: []time.Duration{time.Second, 2 * time.Second},
			wantCalls: 3,
		},
		{
			name:      "flood wait does not advance the backoff",
			script:    []error{occupy, rpcErr(420, "FLOOD_WAIT_5"), occupy},
			wantWaits: []time.Duration{time.Second, 5 * time.Second, 2 * time.Second},
			wantCalls: 4,
		},
		{
			name:   "budget exhausted by 5xx",
			budget: 10 * time.Second,
			script: repeat(occupy, 100),
			// 1+2+4 = 7 s spent; the next 8 s wait would end at 15 s > 10 s.
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			wantCalls: 4,
			wantErr:   ErrRetryBudget,
			wantType:  "CALL_OCCUPY_FAILED",
		},
		{
			name:      "default budget 60s",
			script:    repeat(occupy, 100),
			wantWaits: secs(1, 2, 4, 8, 16), // 31 s spent; the next 32 s would end past 60 s
			wantCalls: 6,
			wantErr:   ErrRetryBudget,
			wantType:  "CALL_OCCUPY_FAILED",
		},
		{
			name:      "4xx is not retried",
			script:    []error{rpcErr(400, "CALL_PEER_INVALID")},
			wantCalls: 1,
			wantErr:   rpcErr(400, "CALL_PEER_INVALID"),
			wantType:  "CALL_PEER_INVALID",
		},
		{
			name:      "401 is not retried",
			script:    []error{rpcErr(401, "AUTH_KEY_UNREGISTERED")},
			wantCalls: 1,
			wantType:  "AUTH_KEY_UNREGISTERED",
			wantErr:   rpcErr(401, "AUTH_KEY_UNREGISTERED"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			inv := &scriptInvoker{script: tt.script, clk: clk}
			mw := Retry{Budget: tt.budget, Clock: clk, Log: zerolog.Nop()}.Handle(inv)

			done := make(chan error, 1)
			go func() { done <- mw(context.Background(), &tg.HelpGetConfigRequest{}, &tg.Config{}) }()

			var waits []time.Duration
			var err error
		loop:
			for {
				select {
				case d := <-clk.waits:
					waits = append(waits, d)
					clk.Advance(d)
				case err = <-done:
					break loop
				}
			}
			if !slices.Equal(waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", waits, tt.wantWaits)
			}
			if got := inv.calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			// Each retry happens exactly after its wait.
			for i := 1; i < len(inv.at) && i <= len(waits); i++ {
				if gap := inv.at[i].Sub(inv.at[i-1]); gap != waits[i-1] {
					t.Errorf("call %d came %s after the previous one, want %s", i+1, gap, waits[i-1])
				}
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v, want success", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("err = nil, want %v", tt.wantErr)
			case tt.wantErr != nil:
				var want *tgerr.Error
				if errors.As(tt.wantErr, &want) {
					if !tgerr.Is(err, want.Type) {
						t.Errorf("err = %v, want type %s", err, want.Type)
					}
				} else if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want errors.Is %v", err, tt.wantErr)
				}
				if rpc, ok := tgerr.As(err); !ok || rpc.Type != tt.wantType {
					t.Errorf("errors.As(*tgerr.Error) = %v, %v; want type %s", rpc, ok, tt.wantType)
				}
			}
		})
	}
}

func TestRetryContextCancelStopsWaitAtOnce(t *testing.T) {
	clk := newFakeClock()
	inv := &scriptInvoker{script: repeat(rpcErr(500, "CALL_OCCUPY_FAILED"), 10), clk: clk}
	ctx, cancel := context.WithCancel(context.Background())
	mw := Retry{Clock: clk}.Handle(inv)
	done := make(chan error, 1)
	go func() { done <- mw(ctx, &tg.HelpGetConfigRequest{}, &tg.Config{}) }()

	if d := <-clk.waits; d != time.Second {
		t.Fatalf("first wait = %s, want 1s", d)
	}
	cancel() // the clock never advances: only the cancellation can end the wait
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !tgerr.Is(err, "CALL_OCCUPY_FAILED") {
		t.Errorf("err = %v, want the last RPC error still reachable", err)
	}
	if got := inv.calls(); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
}

func TestRetryCallerContextErrorIsNotRetried(t *testing.T) {
	clk := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	inv := &scriptInvoker{clk: clk, script: []error{context.Canceled}, onCall: func(int) { cancel() }}
	err := Retry{Clock: clk}.Handle(inv)(ctx, &tg.HelpGetConfigRequest{}, &tg.Config{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := inv.calls(); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
	if len(clk.waits) != 0 {
		t.Errorf("a wait was started after the caller's context ended")
	}
}

func TestRetryStopEndsWait(t *testing.T) {
	clk := newFakeClock()
	stop := make(chan struct{})
	inv := &scriptInvoker{script: repeat(io.EOF, 10), clk: clk}
	mw := Retry{Clock: clk, Stop: stop}.Handle(inv)
	done := make(chan error, 1)
	go func() { done <- mw(context.Background(), &tg.HelpGetConfigRequest{}, &tg.Config{}) }()
	<-clk.waits
	close(stop)
	err := <-done
	if !errors.Is(err, errClosed) || !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want errClosed wrapping io.EOF", err)
	}
}

func TestMethodName(t *testing.T) {
	tests := []struct {
		in   bin.Encoder
		want string
	}{
		{&tg.PhoneDiscardCallRequest{}, "phone.discardCall"},
		{&tg.HelpGetConfigRequest{}, "help.getConfig"},
		{&tg.MessagesGetDhConfigRequest{}, "messages.getDhConfig"},
	}
	for _, tt := range tests {
		if got := methodName(tt.in); got != tt.want {
			t.Errorf("methodName(%T) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRetryWaitsForConnection(t *testing.T) {
	tests := []struct {
		name      string
		reconnect bool // the connection comes back during the wait
		wantErr   error
		wantCalls int
	}{
		{"reconnect then retry", true, nil, 2},
		{"never reconnects: budget", false, ErrRetryBudget, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			up := make(chan struct{})
			inv := &scriptInvoker{script: []error{errors.New("engine was closed")}, clk: clk}
			mw := Retry{Budget: 10 * time.Second, Clock: clk, Connected: func() <-chan struct{} { return up }}.Handle(inv)
			done := make(chan error, 1)
			go func() { done <- mw(context.Background(), &tg.HelpGetConfigRequest{}, &tg.Config{}) }()

			if d := <-clk.waits; d != time.Second {
				t.Fatalf("backoff = %s, want 1s", d)
			}
			clk.Advance(time.Second)
			if d := <-clk.waits; d != 9*time.Second {
				t.Fatalf("connection wait bound = %s, want the 9s left", d)
			}
			if inv.calls() != 1 {
				t.Fatal("retried before the connection was up")
			}
			if tt.reconnect {
				close(up)
			} else {
				clk.Advance(9 * time.Second)
			}
			err := <-done
			if tt.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := inv.calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}
