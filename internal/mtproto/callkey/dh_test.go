package callkey

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/gotd/td/tg"
)

func telegramParams(t *testing.T) *Params {
	t.Helper()
	p, ok := new(big.Int).SetString(telegramPrime, 16)
	if !ok {
		t.Fatal("bad prime constant")
	}
	return &Params{g: 3, p: p, version: 1}
}

func TestTelegramPrimeIsSafe(t *testing.T) {
	p := telegramParams(t).p
	if p.BitLen() != 2048 {
		t.Fatalf("bits = %d", p.BitLen())
	}
	if !p.ProbablyPrime(32) {
		t.Fatal("p is not prime")
	}
	if q := new(big.Int).Rsh(p, 1); !q.ProbablyPrime(32) {
		t.Fatal("(p-1)/2 is not prime")
	}
	if err := checkDHParams(3, p); err != nil {
		t.Fatal(err)
	}
}

func TestSafePrimeCache(t *testing.T) {
	p := telegramParams(t).p
	safePrimes.Delete(string(p.Bytes()))
	t.Cleanup(func() { safePrimes.Store(string(p.Bytes()), struct{}{}) })

	before := safePrimeChecks.Load()
	for i := range 3 {
		if err := checkSafePrime(p); err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
	}
	if got := safePrimeChecks.Load() - before; got != 1 {
		t.Fatalf("expensive checks = %d for 3 calls, want 1 (cache hit after the first)", got)
	}

	notPrime := new(big.Int).Add(p, big.NewInt(2)) // odd, and composite (checked below)
	if notPrime.ProbablyPrime(1) {
		t.Skip("p+2 happens to be prime")
	}
	for i := range 2 {
		if err := checkSafePrime(notPrime); !errors.Is(err, ErrBadDH) {
			t.Fatalf("check %d of p+2: err = %v, want ErrBadDH", i, err)
		}
	}
	if got := safePrimeChecks.Load() - before; got != 3 {
		t.Fatalf("expensive checks = %d, want 3: a failed prime must not be cached", got)
	}
	short := new(big.Int).Rsh(p, 1)
	if err := checkSafePrime(short); err == nil || !strings.Contains(err.Error(), "2047 bits") {
		t.Fatalf("2047-bit p: err = %v", err)
	}
}

// TestCheckGenerator cross-checks the residue conditions against Euler's
// criterion (g is a quadratic residue mod p iff g^((p-1)/2) = 1) on every
// safe prime below 5000.
func TestCheckGenerator(t *testing.T) {
	var safe []int64
	for q := int64(3); 2*q+1 < 5000; q += 2 {
		if big.NewInt(q).ProbablyPrime(10) && big.NewInt(2*q+1).ProbablyPrime(10) {
			safe = append(safe, 2*q+1)
		}
	}
	if len(safe) < 20 {
		t.Fatalf("only %d safe primes found", len(safe))
	}
	accepted := 0
	for _, pv := range safe {
		if pv <= 24 {
			continue // the residue rules assume p larger than the modulus
		}
		p := big.NewInt(pv)
		q := big.NewInt((pv - 1) / 2)
		for g := 2; g <= 7; g++ {
			euler := new(big.Int).Exp(big.NewInt(int64(g)), q, p).Cmp(big.NewInt(1)) == 0
			err := checkGenerator(g, p)
			if (err == nil) != euler {
				t.Errorf("p=%d g=%d: checkGenerator err=%v, Euler says residue=%v", pv, g, err, euler)
			}
			if err == nil {
				accepted++
			}
		}
	}
	if accepted == 0 {
		t.Fatal("no (g, p) accepted")
	}
	for _, g := range []int{0, 1, 8, 9} {
		if err := checkGenerator(g, big.NewInt(23)); !errors.Is(err, ErrBadDH) {
			t.Errorf("g=%d: err = %v, want ErrBadDH", g, err)
		}
	}
}

func TestCheckGX(t *testing.T) {
	p := telegramParams(t).p
	one := big.NewInt(1)
	low := new(big.Int).Lsh(one, 2048-64)
	high := new(big.Int).Sub(p, low)
	add := func(a *big.Int, d int64) *big.Int { return new(big.Int).Add(a, big.NewInt(d)) }
	tests := []struct {
		name string
		gx   *big.Int
		ok   bool
	}{
		{"0", big.NewInt(0), false},
		{"1", one, false},
		{"2", big.NewInt(2), false},
		{"2^1984", low, false},
		{"2^1984+1", add(low, 1), true},
		{"middle", new(big.Int).Rsh(p, 1), true},
		{"p-2^1984-1", add(high, -1), true},
		{"p-2^1984", high, false},
		{"p-1", add(p, -1), false},
		{"p", p, false},
		{"p+1", add(p, 1), false},
	}
	for _, tt := range tests {
		err := checkGX(tt.gx, p)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadDH) {
			t.Errorf("%s: err = %v, want ErrBadDH", tt.name, err)
		}
	}
}

func TestNewExponentMixesServerRandom(t *testing.T) {
	params := telegramParams(t)
	server := make([]byte, 256)
	if _, err := rand.Read(server); err != nil {
		t.Fatal(err)
	}
	server[0] &= 0x7f // below p, so the first candidate is taken
	// With an all-zero local source the secret is exactly the server's random.
	e, err := newExponent(bytes.NewReader(make([]byte, 256)), params, server)
	if err != nil {
		t.Fatal(err)
	}
	if want := new(big.Int).SetBytes(server); e.x.Cmp(want) != 0 {
		t.Fatal("secret is not local XOR server random")
	}
	wantGX := new(big.Int).Exp(big.NewInt(3), e.x, params.p)
	if len(e.gx) != 256 || new(big.Int).SetBytes(e.gx).Cmp(wantGX) != 0 {
		t.Fatal("g_x is not g^x mod p in 256 bytes")
	}
	// And with a random local source it is not.
	e2, err := newExponent(rand.Reader, params, server)
	if err != nil {
		t.Fatal(err)
	}
	if e2.x.Cmp(e.x) == 0 {
		t.Fatal("local randomness ignored")
	}
}

func TestKeyFingerprint(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 256)
	sum := sha1.Sum(key)
	// last 8 of 20 bytes, little-endian
	var want int64
	for i := 7; i >= 0; i-- {
		want = want<<8 | int64(sum[12+i])
	}
	if got := keyFingerprint(key); got != want {
		t.Fatalf("KeyFingerprint = %d, want %d", got, want)
	}
	if int64(binary.LittleEndian.Uint64(sum[12:])) != want {
		t.Fatal("test's own decoding is inconsistent")
	}
}

// dhPair builds both sides of one call's exchange without a network.
func dhPair(t *testing.T) (*OutgoingCall, *IncomingCall) {
	t.Helper()
	params := telegramParams(t)
	a, err := newExponent(rand.Reader, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newExponent(rand.Reader, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(a.gx)
	out := &OutgoingCall{id: 77, accessHash: 5, params: params, a: a}
	in := &IncomingCall{id: 77, accessHash: 6, gAHash: hash[:], params: params, b: b}
	return out, in
}

func TestDHExchange(t *testing.T) {
	out, in := dhPair(t)
	keyA, fpA, err := OnAccepted(out, &tg.PhoneCallAccepted{ID: 77, GB: in.b.gx})
	if err != nil {
		t.Fatal(err)
	}
	keyB, fpB, err := CompleteIncoming(in, &tg.PhoneCall{ID: 77, GAOrB: out.a.gx, KeyFingerprint: fpA})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keyA, keyB) || fpA != fpB {
		t.Fatal("both sides disagree on the key")
	}
	// Independently: key = g^(ab) mod p, 256 bytes.
	p := out.params.p
	ab := new(big.Int).Mul(out.a.x, in.b.x)
	want := new(big.Int).Exp(big.NewInt(3), ab, p).FillBytes(make([]byte, 256))
	if !bytes.Equal(keyA, want) {
		t.Fatal("key is not g^(ab) mod p")
	}
	if fpA != keyFingerprint(want) {
		t.Fatal("fingerprint is not the key's")
	}

	// Secrets never print.
	for _, s := range []string{fmt.Sprint(out), fmt.Sprintf("%+v %#v", out, in), fmt.Sprint(in)} {
		if strings.Contains(s, out.a.x.String()) || strings.Contains(s, in.b.x.String()) ||
			strings.Contains(s, fmt.Sprint(out.a.gx[:8])) {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestDHExchangeFailures(t *testing.T) {
	out, in := dhPair(t)
	p := out.params.p
	_, fp, err := OnAccepted(out, &tg.PhoneCallAccepted{ID: 77, GB: in.b.gx})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := dhPair(t)

	accepted := []struct {
		name string
		acc  *tg.PhoneCallAccepted
		want error
	}{
		{"g_b = 1", &tg.PhoneCallAccepted{ID: 77, GB: []byte{1}}, ErrBadDH},
		{"g_b = p-1", &tg.PhoneCallAccepted{ID: 77, GB: new(big.Int).Sub(p, big.NewInt(1)).Bytes()}, ErrBadDH},
		{"g_b = 2^1984", &tg.PhoneCallAccepted{ID: 77, GB: new(big.Int).Lsh(big.NewInt(1), 1984).Bytes()}, ErrBadDH},
		{"g_b empty", &tg.PhoneCallAccepted{ID: 77}, ErrBadDH},
		{"other call", &tg.PhoneCallAccepted{ID: 78, GB: in.b.gx}, nil},
	}
	for _, tt := range accepted {
		key, _, err := OnAccepted(out, tt.acc)
		if err == nil || key != nil {
			t.Errorf("OnAccepted %s: err = %v, key returned = %v", tt.name, err, key != nil)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("OnAccepted %s: err = %v, want %v", tt.name, err, tt.want)
		}
	}

	calls := []struct {
		name string
		call *tg.PhoneCall
		want error
	}{
		{"wrong g_a (hash mismatch)", &tg.PhoneCall{ID: 77, GAOrB: other.a.gx, KeyFingerprint: fp}, ErrKeyMismatch},
		{"wrong fingerprint", &tg.PhoneCall{ID: 77, GAOrB: out.a.gx, KeyFingerprint: fp ^ 1}, ErrKeyMismatch},
		{"other call", &tg.PhoneCall{ID: 78, GAOrB: out.a.gx, KeyFingerprint: fp}, nil},
	}
	for _, tt := range calls {
		key, _, err := CompleteIncoming(in, tt.call)
		if err == nil || key != nil {
			t.Errorf("CompleteIncoming %s: err = %v", tt.name, err)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("CompleteIncoming %s: err = %v, want %v", tt.name, err, tt.want)
		}
	}

	// g_a whose hash matches but which is out of range: the range check
	// still refuses it.
	bad := []byte{1}
	h := sha256.Sum256(bad)
	in2 := &IncomingCall{id: 77, gAHash: h[:], params: in.params, b: in.b}
	if _, _, err := CompleteIncoming(in2, &tg.PhoneCall{ID: 77, GAOrB: bad}); !errors.Is(err, ErrBadDH) {
		t.Errorf("out-of-range g_a with matching hash: err = %v, want ErrBadDH", err)
	}
}
