package sim

import (
	"testing"

	"github.com/gotd/td/tg"
)

// BenchmarkGetState measures one RPC round trip over loopback MTProto.
func BenchmarkGetState(b *testing.B) {
	srv := sharedServer(b)
	c := startClient(b, srv, sharedStore)
	ctx := testCtx(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.api.UpdatesGetState(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIncomingDiscard measures a pushed incoming call plus the
// account's phone.discardCall (busy) answered with its Updates.
func BenchmarkIncomingDiscard(b *testing.B) {
	srv := sharedServer(b)
	c := startClient(b, srv, sharedStore)
	peer := srv.AddPeer("bench")
	ctx := testCtx(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id, err := srv.IncomingCall(peer, false)
		if err != nil {
			b.Fatal(err)
		}
		info, _ := srv.Call(id)
		if _, err := c.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
			Peer:   tg.InputPhoneCall{ID: id, AccessHash: info.AccessHash},
			Reason: &tg.PhoneCallDiscardReasonBusy{},
		}); err != nil {
			b.Fatal(err)
		}
	}
}
