// Package control owns calld's local control API (CONTRACT §3): an
// HTTP/1.1 + JSON server on a Unix socket and the fan-out hub of live
// events behind GET /v1/events. The Go client the calld CLI is built on
// is the public package github.com/calld/calld/client.
//
// The daemon implements calld.CallService (and calld.MediaService for the
// media routes); the server only parses and validates
// requests, checks the caller's credentials (SO_PEERCRED) on mutating and
// secret routes, and renders results and errors in the contract's shapes.
//
// Routes:
//
//	GET  /v1/status
//	GET  /v1/calls[?all=1]
//	GET  /v1/calls/{id}
//	POST /v1/calls                    {"peer": "@name"|"123", "video": bool, "protocol": {...}}  -> 201
//	POST /v1/calls/{id}/discard       {"reason": "auto|busy|hangup|missed|disconnect"} (optional)
//	POST /v1/calls/{id}/accept        {"protocol": {...}} (optional)
//	GET  /v1/calls/{id}/media         (secret: mutating-route permissions)
//	GET  /v1/calls/{id}/signaling[?since=N][&follow=0]  NDJSON {"seq": n, "data": base64} (secret)
//	POST /v1/calls/{id}/signaling     {"data": base64} -> {"sent": true}
//	POST /v1/calls/{id}/rating        {"rating": 1..5, "comment": "..."}
//	POST /v1/calls/{id}/debug         the media engine's JSON debug log
//	POST /v1/calls/{id}/connection    {"connection_id": "123"}
//	GET  /v1/events[?since=SEQ][&follow=0]
//	POST /v1/login                    {} | {"phone"} | {"code"} | {"password"}
//
// Decisions beyond the contract:
//
//   - Request bodies are strict: unknown fields, trailing data and wrong
//     types are "invalid" (400), so that a typo such as {"reson":"busy"}
//     never silently becomes a discard with reason auto.
//   - A body larger than Options.BodyLimit is answered 413 with code
//     "invalid" (the contract lists no code for it).
//   - An unknown route is 404 "not_found"; a known path with the wrong
//     method is 405 with code "invalid" and an Allow header; a
//     non-canonical path (for example "/v1//status") is 404 "not_found".
//   - A request net/http cannot parse (malformed request line or header,
//     bad HTTP version, header too large, unknown transfer encoding) is
//     answered with net/http's status (400, 505, 431, 501) in the JSON
//     error shape with code "invalid", and the connection is closed.
//   - Connections are capped (Options.MaxConnections, of which an eighth
//     is kept for root and the daemon's uid, and MaxConnectionsPerUID
//     for every other uid; event streams count). A connection past a cap is answered 503
//     "unavailable" with a message naming the cap, and closed. A
//     keep-alive connection idle for Options.IdleTimeout is closed.
//   - Error codes that are not calld's own (Telegram's error types such as
//     CALL_PEER_INVALID or FLOOD_WAIT) are answered 502.
//   - GET /v1/events: without "since" the stream is live only; with
//     "since=N" the journal's events with seq > N are replayed first, then
//     the live events follow without gap or duplicate. "since" beyond
//     the last seq ever assigned (seqs are never reused) is 400 "invalid"
//     naming the last seq, rather than a stream that never delivers. "follow=0" (an
//     extension) replays the journal from "since" (default 0) and ends the
//     response when the replay is done. A subscriber that cannot keep up is
//     dropped by the hub: its stream ends with one final line
//     {"error":{"code":"slow_reader","message":...}} and the client
//     should reconnect with ?since=<last seq>. When the daemon shuts down
//     the stream simply ends.
//   - "protocol" (POST /v1/calls, .../accept) overrides the configured
//     [media] phoneCallProtocol field by field (udp_p2p, udp_reflector,
//     min_layer, max_layer, library_versions); the result is validated
//     like [media] (400 invalid naming protocol.<field>).
//   - The media routes (signaling.go) are served when the CallService
//     also implements calld.MediaService. GET .../signaling replays the payloads with
//     seq > since (default 0), then follows until the call ends, when the
//     response ends; "follow=0" ends it after the replay. A call that is
//     not live is 404 not_found or 409 conflict; "since" beyond the call's
//     last seq is 400 invalid (the numbering starts again at 1 when calld
//     restarts). HEAD answers the header (or the error) at once. POST .../rating and
//     .../debug are 409 conflict while the call is live, when its
//     need_rating / need_debug is false, and the second time; they answer
//     the call's record.
//   - Login (POST /v1/login) takes at most one of phone, code, password;
//     an empty body asks for the current state. Every answer is a
//     LoginState whose "state" says what is needed next. A step with a
//     field while another step's answer is being worked on (Telegram
//     has not answered it yet) is 409 "conflict" and changes nothing.
package control
