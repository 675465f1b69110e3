package sim

import (
	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// phoneCodeHash is what auth.sendCode returns and auth.signIn expects.
const phoneCodeHash = "simcodehash"

func (s *Server) sendCodeLocked(r *tg.AuthSendCodeRequest) (bin.Encoder, error) {
	if r.PhoneNumber == "" {
		return nil, tgerr.New(400, "PHONE_NUMBER_INVALID")
	}
	return &tg.AuthSentCode{
		Type:          &tg.AuthSentCodeTypeApp{Length: len(LoginCode)},
		PhoneCodeHash: phoneCodeHash,
		Timeout:       60,
	}, nil
}

func authorizationLocked(a *Account) *tg.AuthAuthorization {
	return &tg.AuthAuthorization{User: a.usersLocked(a.id)[0]}
}

func (s *Server) signInLocked(rc *rpcCtx, r *tg.AuthSignInRequest) (bin.Encoder, error) {
	switch {
	case r.PhoneCodeHash != phoneCodeHash:
		return nil, tgerr.New(400, "PHONE_CODE_EXPIRED")
	case r.PhoneCode != LoginCode:
		return nil, tgerr.New(400, "PHONE_CODE_INVALID")
	}
	a := s.signInAccountLocked(r.PhoneNumber)
	if s.opts.Password != "" {
		s.state.needPassword[rc.keyID] = a
		return nil, tgerr.New(401, "SESSION_PASSWORD_NEEDED")
	}
	s.state.loggedIn[rc.keyID] = a
	return authorizationLocked(a), nil
}

func (s *Server) getPasswordLocked() (bin.Encoder, error) {
	if s.opts.Password == "" {
		return &tg.AccountPassword{
			NewAlgo:       &tg.PasswordKdfAlgoUnknown{},
			NewSecureAlgo: &tg.SecurePasswordKdfAlgoUnknown{},
			SecureRandom:  randomBytes(32),
		}, nil
	}
	sp, err := s.srpLocked()
	if err != nil {
		return nil, err
	}
	sp.newChallenge()
	return &tg.AccountPassword{
		HasPassword:   true,
		CurrentAlgo:   sp.algo(),
		SRPB:          sp.gb,
		SRPID:         sp.id,
		NewAlgo:       sp.algo(),
		NewSecureAlgo: &tg.SecurePasswordKdfAlgoSHA512{Salt: randomBytes(8)},
		SecureRandom:  randomBytes(32),
	}, nil
}

func (s *Server) checkPasswordLocked(rc *rpcCtx, r *tg.AuthCheckPasswordRequest) (bin.Encoder, error) {
	if s.opts.Password == "" {
		return nil, tgerr.New(400, "PASSWORD_HASH_INVALID")
	}
	in, ok := r.Password.(*tg.InputCheckPasswordSRP)
	if !ok {
		return nil, tgerr.New(400, "PASSWORD_HASH_INVALID")
	}
	sp, err := s.srpLocked()
	if err != nil {
		return nil, err
	}
	if in.SRPID != sp.id || !sp.verify(in.A, in.M1) {
		return nil, tgerr.New(400, "PASSWORD_HASH_INVALID")
	}
	a := s.state.needPassword[rc.keyID]
	if a == nil {
		if !s.opts.Authorized {
			// Telegram accepts checkPassword only after a signIn that asked for it.
			return nil, tgerr.New(400, "PASSWORD_HASH_INVALID")
		}
		a = s.accountOfLocked(rc.keyID)
	}
	delete(s.state.needPassword, rc.keyID)
	s.state.loggedIn[rc.keyID] = a
	return authorizationLocked(a), nil
}

// SetPassword changes the account's 2FA password ("" removes it). Keys
// already logged in stay logged in.
func (s *Server) SetPassword(password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Password = password
	s.state.srp = nil
}

// LogOutAll logs every auth key of every account out (Options.Authorized
// false only; with it, keys act as the default account again).
func (s *Server) LogOutAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.state.loggedIn)
	clear(s.state.needPassword)
}
