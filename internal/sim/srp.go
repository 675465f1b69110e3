package sim

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/gotd/td/tg"
)

// srpState is the server half of Telegram's SRP 2FA check
// (https://core.telegram.org/api/srp), with the password's verifier v
// computed once.
type srpState struct {
	salt1, salt2 []byte
	v            *big.Int
	// Current challenge.
	id int64
	b  *big.Int
	gb []byte
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("sim: crypto/rand: %v", err))
	}
	return b
}

func sha256Of(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func pad256(x *big.Int) []byte {
	b := make([]byte, 256)
	return x.FillBytes(b)
}

// srpLocked returns the SRP state, deriving the verifier on first use.
func (s *Server) srpLocked() (*srpState, error) {
	if s.state.srp != nil {
		return s.state.srp, nil
	}
	sp := &srpState{salt1: randomBytes(40), salt2: randomBytes(16)}
	saltHash := func(data, salt []byte) []byte { return sha256Of(salt, data, salt) }
	ph1 := saltHash(saltHash([]byte(s.opts.Password), sp.salt1), sp.salt2)
	k, err := pbkdf2.Key(sha512.New, string(ph1), sp.salt1, 100000, 64)
	if err != nil {
		return nil, fmt.Errorf("sim: srp pbkdf2: %w", err)
	}
	x := new(big.Int).SetBytes(saltHash(k, sp.salt2))
	sp.v = new(big.Int).Exp(big.NewInt(dhG), x, dhPrime)
	s.state.srp = sp
	return sp, nil
}

func (sp *srpState) algo() *tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow {
	return &tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow{
		Salt1: sp.salt1,
		Salt2: sp.salt2,
		G:     dhG,
		P:     pad256(dhPrime),
	}
}

// newChallenge picks a fresh b and g_b = k*v + g^b mod p.
func (sp *srpState) newChallenge() {
	sp.id = int64(binary.LittleEndian.Uint64(randomBytes(8)) >> 1)
	sp.b = new(big.Int).SetBytes(randomBytes(256))
	g := big.NewInt(dhG)
	k := new(big.Int).SetBytes(sha256Of(pad256(dhPrime), pad256(g)))
	gb := new(big.Int).Exp(g, sp.b, dhPrime)
	gb.Add(gb, new(big.Int).Mul(k, sp.v))
	gb.Mod(gb, dhPrime)
	sp.gb = pad256(gb)
}

// verify checks the client's A and M1 against the current challenge.
func (sp *srpState) verify(aBytes, m1 []byte) bool {
	if sp.b == nil || len(aBytes) == 0 || len(aBytes) > 256 {
		return false
	}
	a := new(big.Int).SetBytes(aBytes)
	if a.Sign() <= 0 || a.Cmp(dhPrime) >= 0 {
		return false
	}
	ga := pad256(a)
	u := new(big.Int).SetBytes(sha256Of(ga, sp.gb))
	// S = (A * v^u)^b mod p
	sv := new(big.Int).Exp(sp.v, u, dhPrime)
	sv.Mul(sv, a).Mod(sv, dhPrime)
	sv.Exp(sv, sp.b, dhPrime)
	ka := sha256Of(pad256(sv))
	hp := sha256Of(pad256(dhPrime))
	hg := sha256Of(pad256(big.NewInt(dhG)))
	x := make([]byte, len(hp))
	subtle.XORBytes(x, hp, hg)
	want := sha256Of(x, sha256Of(sp.salt1), sha256Of(sp.salt2), ga, sp.gb, ka)
	return bytes.Equal(want, m1)
}
