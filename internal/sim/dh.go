package sim

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"math/big"

	"github.com/gotd/td/tg"
)

// dhG and dhPrime are Telegram's well-known Diffie-Hellman parameters
// (the 2048-bit safe prime that messages.getDhConfig returns, g = 3).
const dhG = 3

// DHVersion is the version messages.getDhConfig reports for dhPrime.
const DHVersion = 1

var dhPrime, _ = new(big.Int).SetString(""+
	"C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"+
	"48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"+
	"20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"+
	"2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"+
	"A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"+
	"FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"+
	"E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"+
	"0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B", 16)

// DHPrime returns a copy of the prime the server uses for calls and SRP.
func DHPrime() *big.Int { return new(big.Int).Set(dhPrime) }

func (s *Server) dhConfigLocked(r *tg.MessagesGetDhConfigRequest) tg.MessagesDhConfigClass {
	n := r.RandomLength
	if n < 0 {
		n = 0
	}
	if n > 1024 {
		n = 1024
	}
	rnd := randomBytes(n)
	if r.Version == DHVersion {
		return &tg.MessagesDhConfigNotModified{Random: rnd}
	}
	return &tg.MessagesDhConfig{G: dhG, P: pad256(dhPrime), Version: DHVersion, Random: rnd}
}

// dhSecret is one side of a call's key exchange.
type dhSecret struct {
	x  *big.Int // a or b
	gx []byte   // g^x mod p, 256 bytes
}

// secretBytes is the size of the sim's secret exponents. Telegram's
// clients use 2048-bit ones; 256 bits keep a simulated call cheap (one
// modular exponentiation costs about 8 times less) while g^x and the key
// stay full 2048-bit values subject to the same checks.
const secretBytes = 32

func newDHSecret() dhSecret {
	for {
		x := new(big.Int).SetBytes(randomBytes(secretBytes))
		gx := new(big.Int).Exp(big.NewInt(dhG), x, dhPrime)
		if validGX(gx) {
			return dhSecret{x: x, gx: pad256(gx)}
		}
	}
}

// validGX is Telegram's check on g_a / g_b: 1 < g_x < p-1 and
// 2^(2048-64) <= g_x <= p - 2^(2048-64).
func validGX(gx *big.Int) bool {
	one := big.NewInt(1)
	pm1 := new(big.Int).Sub(dhPrime, one)
	if gx.Cmp(one) <= 0 || gx.Cmp(pm1) >= 0 {
		return false
	}
	low := new(big.Int).Lsh(one, 2048-64)
	high := new(big.Int).Sub(dhPrime, low)
	return gx.Cmp(low) >= 0 && gx.Cmp(high) <= 0
}

// sharedKey is (g_other)^x mod p padded to 256 bytes, and its fingerprint.
func (d dhSecret) sharedKey(gOther []byte) (key []byte, fingerprint int64, ok bool) {
	g := new(big.Int).SetBytes(gOther)
	if len(gOther) > 256 || !validGX(g) {
		return nil, 0, false
	}
	key = pad256(new(big.Int).Exp(g, d.x, dhPrime))
	return key, KeyFingerprint(key), true
}

// KeyFingerprint is a call key's fingerprint: the last 8 bytes of
// SHA1(key) read as a little-endian int64.
func KeyFingerprint(key []byte) int64 {
	sum := sha1.Sum(key)
	return int64(binary.LittleEndian.Uint64(sum[12:20]))
}

// GAHash is SHA256(g_a), the commitment phoneCallRequested carries.
func GAHash(ga []byte) []byte {
	h := sha256.Sum256(ga)
	return h[:]
}
