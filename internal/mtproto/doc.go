// Package mtproto owns calld's wiring of the gotd v0.93.0 MTProto client:
// which servers it talks to (DC options and RSA public keys, kept
// authoritative over the server-advertised DC list), the session storage
// hook and the connection events, the order of the RPC middlewares, the
// phone-call RPCs, the login flow, and the bridge from gotd's zap logs to
// calld's zerolog logger.
//
// Two jobs live in their own packages below it: the middlewares and the
// errors they type in package middleware, the call key exchange (DH checks,
// keys, the halves the state file keeps) in package callkey, which is pure.
//
// # Data path
//
// Every RPC goes through [Client.API]. Its middlewares, outermost first:
//
//  1. error count (middleware.CountErrors): an RPC that still fails is
//     counted in calld_rpc_errors_total by method and type
//     ([Config.Metrics]);
//  2. 401s reported (middleware.Unauthorized, when [Config.Unauthorized]
//     is set): an RPC that ends with ErrUnauthorized is reported with its
//     method, so that a session revoked while calld runs is noticed;
//  3. typed errors (middleware.TypedErrors): an RPC error is wrapped so
//     that errors.Is matches the sentinels of package middleware
//     (ErrUnauthorized, ErrCallOccupyFailed, ...) while errors.As still
//     reaches the original *tgerr.Error;
//  4. updates hook (gotd's hook.UpdateHook): an RPC result of type Updates
//     is handed to [UpdatesSink.Updates] with own=true, synchronously,
//     before the RPC returns to its caller;
//  5. retry (middleware.Retry): FLOOD_WAIT_X waits X, 5xx and network
//     errors back off 1, 2, 4 s ..., all within [Config.RetryBudget] on
//     [Config.Clock].
//
// Pushed updates (gotd's UpdateHandler) reach the same sink with own=false.
//
// # Connection events
//
// gotd v0.93.0 calls the session storage's StoreSession each time a primary
// connection completes its MTProto session set-up (new_session_created,
// then initConnection+help.getConfig, then Client.onSession ->
// saveSession), which is once per (re)connection. The Client wraps the
// configured session.Storage and reports [UpdatesSink.Connected] from there.
// Disconnects are seen on the TCP connection itself: the Client dials through
// its own resolver and reports [UpdatesSink.Disconnected] when the connection
// that was reported connected fails or is closed. Both events are delivered in
// order from one goroutine of [Client.Run], never from gotd's own goroutines,
// so the sink may issue RPCs from them.
//
// # Secrets
//
// Nothing here logs an auth key, a DH secret or shared key, the api_hash, a
// login code or a password; phone numbers are logged through [logging.MaskPhone].
package mtproto
