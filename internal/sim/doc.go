// Package sim owns the simulated Telegram: a real MTProto server on
// loopback TCP (gotd v0.93.0's tgtest: real key exchange, real encryption)
// that implements Telegram's semantics for one account (SelfID) or
// several (AddAccount, accounts.go) and the peers they call or are called
// by. Tests, the demo and the benchmarks use
// it; nothing mocks the client side.
//
// Wiring a gotd client:
//
//	srv, _ := sim.New(sim.Options{Authorized: true})
//	_ = srv.Listen(ctx, "127.0.0.1:0")
//	opts := srv.ClientOptions() // DC, DCList, PublicKeys, Resolver
//	opts.SessionStorage = &session.StorageMemory{}
//	client := telegram.NewClient(1, "hash", opts)
//
// What it answers: help.getConfig (call_receive_timeout_ms and
// call_ring_timeout_ms from Options, this server as the only DC option),
// help.getNearestDc, users.getUsers, users.getFullUser,
// contacts.resolveUsername, updates.getState, updates.getDifference,
// messages.getDhConfig (Telegram's 2048-bit prime, g = 3, version
// DHVersion: a request with that version gets dhConfigNotModified),
// auth.sendCode, auth.signIn (code LoginCode "12345"), account.getPassword
// and auth.checkPassword (real SRP when Options.Password is set),
// auth.logOut, and the phone methods requestCall, receivedCall, acceptCall,
// confirmCall, discardCall, setCallRating, saveCallDebug, sendSignalingData
// (media.go: the peer plays a media engine). Any other constructor of
// gotd's tg (a method, or a type sent as a request) answers
// INPUT_METHOD_INVALID (400), undecoded (Record.Req nil, Method its TL
// name); one tg does not know, INPUT_CONSTRUCTOR_INVALID. With
// Options.Authorized false, an auth key that has not signed in gets
// AUTH_KEY_UNREGISTERED (401) from every method but help.*, auth.* and
// account.getPassword.
//
// Every request is acknowledged (msgs_ack) and its answer cached by
// session and msg_id, so a re-send is answered again, never re-executed.
//
// Accounts. A Server starts with the default account (SelfID, phone
// SelfPhone), on which its own methods (IncomingCall, Push, SendMessage,
// State, the push faults) act. AddAccount(phone) adds one more (user ids
// SelfID+1, +2, …); an *Account has IncomingCall, Push, SendMessage,
// State, Calls, Count and WaitCount of its own. An auth key acts as the
// account whose phone it signed in with (auth.signIn; a phone no account
// has signs in as the default); with Options.Authorized a key that did
// not sign in acts as the account whose user id is the api_id of its
// initConnection (a calld config picks its account with api_id, no
// login), else as the default account. Every account has its own
// pts/qts/seq, history, message ids and calls; pushes go only to sessions
// whose key acts as that account, and another account's call answers
// CALL_PEER_INVALID. Peers (AddPeer), the password and the faults of
// FailRPC/HoldRPC are shared. Server.Count and Server.Calls cover every
// account; Record.Account says which account a request came from.
//
// Updates. Each account keeps its common pts, qts (always 0) and seq, and
// dates from Options.Now in unix seconds. Pts events (updateNewMessage:
// SendMessage, OpenGap, and the messageService with messageActionPhoneCall
// of every ended call) are kept in a history. Every pushed container is
// `updates{seq+1}`; updatePhoneCall has no pts and is kept by date.
// updates.getDifference answers from the history: differenceEmpty (date,
// seq) when nothing is new; difference with new_messages, other_updates
// (non-pts updates whose date >= the request's date, like Telegram, so an
// updatePhoneCall can repeat) and state; differenceSlice with
// intermediate_state past pts_total_limit (default 100); differenceTooLong
// when the client is more than TooLongGap (1000) behind, older than the
// kept history, or ahead of the server (a state saved against an earlier
// sim process: the client must re-fetch the state with updates.getState). Pushes go to every session of the account that made a
// request not wrapped in invokeWithoutUpdates, except that the result of a
// caller's own RPC (phone.discardCall's Updates) is not pushed back to it.
//
// Calls (https://core.telegram.org/api/end-to-end/voice-calls), the sim
// playing the remote user, with its own DH math (dh.go):
//
//   - IncomingCall: push phoneCallRequested{g_a_hash}. phone.acceptCall{g_b}
//     answers phone.phoneCall{phoneCallWaiting}, then the sim confirms:
//     push phoneCall{g_a_or_b = g_a, key_fingerprint, connections}.
//   - phone.requestCall{g_a_hash} answers phone.phoneCall{phoneCallWaiting};
//     then per the peer's Behaviour: Answer (default) pushes
//     phoneCallWaiting{receive_date} and phoneCallAccepted{g_b};
//     RingForever only the first (PeerAnswer accepts later); Busy pushes
//     phoneCallDiscarded{busy}; Unreachable nothing. phone.confirmCall
//     checks sha256(g_a) == g_a_hash and the fingerprint (a mismatch
//     discards the call with reason disconnect and answers 400
//     G_A_HASH_MISMATCH, G_A_INVALID or KEY_FINGERPRINT_MISMATCH), then
//     answers phone.phoneCall{phoneCall{g_a_or_b = g_b, ...}}.
//   - phone.discardCall answers updates{[updatePhoneCall(phoneCallDiscarded
//     {reason, duration, video, need_rating when it had been active with a
//     duration}), updateNewMessage(messageService{messageActionPhoneCall})
//     pts+1 pts_count 1], users, chats, date, seq+1}. Errors: the call
//     accepted on another device (AcceptedElsewhere) -> 400
//     CALL_ALREADY_ACCEPTED; a repeated discard of a call this account
//     discarded -> 400 CALL_ALREADY_DECLINED (as Telegram answers);
//     unknown, wrong access_hash or ended by the peer -> 400
//     CALL_PEER_INVALID; FailRPC for injected ones (CALL_OCCUPY_FAILED,
//     FLOOD_WAIT_X).
//
// The world: SelfID (the account, phone SelfPhone), ServiceID (777000,
// sender of OpenGap's messages) and the users AddPeer creates (access hash
// AccessHash(id)). Driving it: SendMessage (a pts event pushed), Push (a
// container of updates WITHOUT pts), IncomingCall, PeerHangup, PeerAnswer,
// AcceptedElsewhere, SetPeerBehaviour, SetPassword, LogOutAll, SetNeedDebug
// (and Options.SignalingPayloads). Observing it: State, Requests, Count (requests received), Executed (requests run
// and answered), Dropped, WaitCount (blocks until n requests of a method
// arrived: tests need no sleeps), Call, Calls, CallKey, SignalingSent,
// SignalingReceived, CallFeedback, Conns, Done.
//
// Faults: DropPushes, DuplicatePushes, ReorderPushes, ForceTooLong,
// OpenGap, FailRPC (the next n calls of a method answer an error without
// running), HoldRPC (calls of a method are acknowledged and recorded but
// run and answered only at release; one whose connection was cut
// meanwhile is dropped unrun, like a request lost in transit) and Cut
// (closes every client TCP connection; gotd reconnects with a new MTProto
// session on the same auth key).
//
// Peer key exchange: the sim's secret exponents are 256-bit (g^x and the
// key are full 2048-bit values with Telegram's range checks), to keep a
// simulated call under a millisecond of server CPU. PrepareCalls computes
// the next calls' halves ahead, so that a burst measures the client.
//
// Limits: auth keys live in the server's memory; a client holding a key
// from another sim process gets AUTH_KEY_NOT_FOUND and gotd makes a new
// key (with Authorized false it must sign in again). The sim does not end
// calls by itself on timeouts; the client's timers do.
package sim
