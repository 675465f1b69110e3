package mtproto

import (
	"context"
	"testing"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
)

// benchCalls makes n incoming calls on the shared sim and returns them as
// InputPhoneCall, outside the timed part.
func benchCalls(b *testing.B, n int) []tg.InputPhoneCall {
	b.Helper()
	srv := sharedSim(b)
	peer := srv.AddPeer("bench_caller")
	calls := make([]tg.InputPhoneCall, n)
	for i := range calls {
		id, err := srv.IncomingCall(peer, false)
		if err != nil {
			b.Fatal(err)
		}
		info, ok := srv.Call(id)
		if !ok {
			b.Fatalf("call %d unknown", id)
		}
		calls[i] = tg.InputPhoneCall{ID: id, AccessHash: info.AccessHash}
	}
	return calls
}

// BenchmarkBareDiscard: sequential phone.discardCall round trips over
// loopback with the bare gotd client (no middleware, plain tg.Client, no
// updates subscription) against the sim. The floor of the discard path.
func BenchmarkBareDiscard(b *testing.B) {
	srv := sharedSim(b)
	calls := benchCalls(b, b.N)
	opts := srv.ClientOptions()
	opts.SessionStorage = warmStorage(b)
	client := telegram.NewClient(17349, "test-api-hash", opts)
	reason := &tg.PhoneCallDiscardReasonHangup{}
	err := client.Run(context.Background(), func(ctx context.Context) error {
		api := client.API()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{Peer: calls[i], Reason: reason}); err != nil {
				return err
			}
		}
		b.StopTimer()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDiscard: the same through Client.DiscardCall (typed errors,
// updates hook into a no-op sink, retry middleware, updates subscription).
func BenchmarkDiscard(b *testing.B) {
	srv := sharedSim(b)
	calls := benchCalls(b, b.N)
	cfg := simConfig(b, srv, srv.Addr())
	cfg.Session = warmStorage(b)
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	err = c.Run(context.Background(), func(ctx context.Context) error {
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.DiscardCall(ctx, Discard{Peer: calls[i], Reason: "hangup"}); err != nil {
				return err
			}
		}
		b.StopTimer()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
