//go:build race

package manager_test

// raceEnabled: the tests that close a connection with an RPC in flight
// meet a data race inside gotd v0.93.0 (rpc.Engine.ForceClose against
// Conn.Invoke, fixed upstream after v0.93.0, the only version available):
// they skip under -race and run in CI's step without it.
const raceEnabled = true
