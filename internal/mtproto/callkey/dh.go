package callkey

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
)

const (
	dhBits  = 2048
	dhBytes = dhBits / 8
)

// RandomLength is the random_length to ask messages.getDhConfig for: one
// exponent's worth of the server's random bytes.
const RandomLength = dhBytes

// telegramPrime is the 2048-bit safe prime Telegram's messages.getDhConfig
// has served for years (with g = 3). It is pre-verified in the prime cache;
// TestTelegramPrimeIsSafe checks it really is a safe prime.
const telegramPrime = "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F" +
	"48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37" +
	"20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64" +
	"2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4" +
	"A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754" +
	"FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4" +
	"E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F" +
	"0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B"

// safePrimes is the process-wide cache of primes that passed the (costly)
// safe-prime test, keyed by the prime's big-endian bytes.
var (
	safePrimes      sync.Map // string(p.Bytes()) -> struct{}
	safePrimeChecks atomic.Int64
)

func init() {
	p, _ := new(big.Int).SetString(telegramPrime, 16)
	safePrimes.Store(string(p.Bytes()), struct{}{})
}

// checkSafePrime reports whether p is a 2048-bit safe prime: p and (p-1)/2
// both prime. Results are cached per p for the life of the process.
func checkSafePrime(p *big.Int) error {
	if p.BitLen() != dhBits {
		return fmt.Errorf("%w: p has %d bits, want %d", ErrBadDH, p.BitLen(), dhBits)
	}
	if _, ok := safePrimes.Load(string(p.Bytes())); ok {
		return nil
	}
	safePrimeChecks.Add(1)
	if !p.ProbablyPrime(64) {
		return fmt.Errorf("%w: p is not prime", ErrBadDH)
	}
	q := new(big.Int).Rsh(p, 1) // (p-1)/2 for odd p
	if !q.ProbablyPrime(64) {
		return fmt.Errorf("%w: (p-1)/2 is not prime", ErrBadDH)
	}
	safePrimes.Store(string(p.Bytes()), struct{}{})
	return nil
}

// checkGenerator checks that g generates the cyclic subgroup of prime order
// (p-1)/2, i.e. g is a quadratic residue mod p, through the residue
// conditions on p that Telegram lists for g in 2..7.
func checkGenerator(g int, p *big.Int) error {
	mod := func(m int64) int64 { return new(big.Int).Mod(p, big.NewInt(m)).Int64() }
	var ok bool
	switch g {
	case 2:
		ok = mod(8) == 7
	case 3:
		ok = mod(3) == 2
	case 4:
		ok = true
	case 5:
		r := mod(5)
		ok = r == 1 || r == 4
	case 6:
		r := mod(24)
		ok = r == 19 || r == 23
	case 7:
		r := mod(7)
		ok = r == 3 || r == 5 || r == 6
	default:
		return fmt.Errorf("%w: g = %d, want 2..7", ErrBadDH, g)
	}
	if !ok {
		return fmt.Errorf("%w: g = %d does not generate the subgroup of order (p-1)/2", ErrBadDH, g)
	}
	return nil
}

// checkDHParams runs every check on (g, p).
func checkDHParams(g int, p *big.Int) error {
	if p.BitLen() != dhBits {
		return fmt.Errorf("%w: p has %d bits, want %d", ErrBadDH, p.BitLen(), dhBits)
	}
	if err := checkGenerator(g, p); err != nil {
		return err
	}
	return checkSafePrime(p)
}

// checkGX checks a public value g_a or g_b: 1 < g_x < p-1 and
// 2^(2048-64) < g_x < p - 2^(2048-64).
func checkGX(gx, p *big.Int) error {
	one := big.NewInt(1)
	pMinusOne := new(big.Int).Sub(p, one)
	if gx.Cmp(one) <= 0 || gx.Cmp(pMinusOne) >= 0 {
		return fmt.Errorf("%w: g_x out of range (1, p-1)", ErrBadDH)
	}
	low := new(big.Int).Lsh(one, dhBits-64)
	high := new(big.Int).Sub(p, low)
	if gx.Cmp(low) <= 0 || gx.Cmp(high) >= 0 {
		return fmt.Errorf("%w: g_x out of range (2^1984, p-2^1984)", ErrBadDH)
	}
	return nil
}

// Params is a verified (g, p) pair of messages.getDhConfig, with the
// config's version.
type Params struct {
	g       int
	p       *big.Int
	version int
}

// NewParams checks (g, p) of messages.getDhConfig (2048-bit safe prime,
// g generating the subgroup of order (p-1)/2); the error matches ErrBadDH.
func NewParams(g int, p []byte, version int) (*Params, error) {
	params := &Params{g: g, p: new(big.Int).SetBytes(p), version: version}
	if err := checkDHParams(params.g, params.p); err != nil {
		return nil, err
	}
	return params, nil
}

// Version is the messages.getDhConfig version of the parameters.
func (p *Params) Version() int { return p.version }

// exponent is one side's secret with its public value.
type exponent struct {
	x  *big.Int // secret a or b: never logged, never printed
	gx []byte   // g^x mod p, 256 bytes big-endian
}

// newExponent picks x = 256 random bytes XOR the server's random, and
// retries until g^x mod p passes checkGX.
func newExponent(rand io.Reader, params *Params, serverRandom []byte) (*exponent, error) {
	buf := make([]byte, dhBytes)
	g := big.NewInt(int64(params.g))
	for range 16 {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("read random: %w", err)
		}
		for i := 0; i < len(buf) && i < len(serverRandom); i++ {
			buf[i] ^= serverRandom[i]
		}
		x := new(big.Int).SetBytes(buf)
		if x.Cmp(big.NewInt(1)) <= 0 || x.Cmp(new(big.Int).Sub(params.p, big.NewInt(1))) >= 0 {
			continue
		}
		gx := new(big.Int).Exp(g, x, params.p)
		if checkGX(gx, params.p) != nil {
			continue
		}
		return &exponent{x: x, gx: gx.FillBytes(make([]byte, dhBytes))}, nil
	}
	return nil, errors.New("no valid DH exponent after 16 tries: broken random source")
}

// sharedKey checks the other side's public value and returns the 256-byte
// key (g_other)^x mod p with its fingerprint.
func (e *exponent) sharedKey(params *Params, other []byte) ([]byte, int64, error) {
	gOther := new(big.Int).SetBytes(other)
	if err := checkGX(gOther, params.p); err != nil {
		return nil, 0, err
	}
	k := new(big.Int).Exp(gOther, e.x, params.p)
	key := k.FillBytes(make([]byte, dhBytes))
	return key, keyFingerprint(key), nil
}

// keyFingerprint is the fingerprint of a call key: the last 8 bytes of
// sha1(key) read as a little-endian int64.
func keyFingerprint(key []byte) int64 {
	sum := sha1.Sum(key)
	return int64(binary.LittleEndian.Uint64(sum[len(sum)-8:]))
}

// gaHashMatches reports whether sha256(gA) == hash, in constant time.
func gaHashMatches(gA, hash []byte) bool {
	sum := sha256.Sum256(gA)
	return subtle.ConstantTimeCompare(sum[:], hash) == 1
}
