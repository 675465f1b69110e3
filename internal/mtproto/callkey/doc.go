// Package callkey owns the end-to-end key exchange of a 1:1 phone call
// (Diffie-Hellman with the checks of https://core.telegram.org/api/end-to-end
// and https://core.telegram.org/api/end-to-end/voice-calls): verifying the
// server's DH parameters (cached safe primes), our secret exponent and its
// public value, the shared key and its fingerprint, and our half of the
// exchange in the form the state file keeps (CONTRACT §5.1) so that it
// completes after a restart.
//
// It is pure: no RPC is made here. package mtproto fetches the parameters
// (messages.getDhConfig) and sends g_a_hash, g_a and g_b in
// phone.requestCall, phone.confirmCall and phone.acceptCall.
//
// Nothing here logs or prints a secret exponent or a key: the halves'
// String and GoString are redacted.
package callkey
