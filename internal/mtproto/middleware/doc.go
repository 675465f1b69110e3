// Package middleware owns the RPC middlewares of calld's MTProto client
// (telegram.Middleware, installed by package mtproto) and the errors they
// produce:
//
//   - [TypedErrors]: an RPC error is wrapped in an [*Error] so that
//     errors.Is matches the sentinels of errors.go (ErrCallOccupyFailed,
//     ErrUnauthorized, ...) while errors.As still reaches the original
//     *tgerr.Error; [APIErrorCode] maps any of them to the control API's
//     error code (CONTRACT §3);
//   - [Retry]: FLOOD_WAIT_X waits X, 5xx and network errors back off 1, 2,
//     4 s ..., all within a budget measured on gotd's clock.Clock.
//
// The third middleware of the chain, which hands an RPC's Updates result to
// the updates sink, is gotd's own hook.UpdateHook (see mtproto.New).
package middleware
