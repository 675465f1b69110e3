package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/gotd/td/tg"
)

// Account is one simulated Telegram account of a Server: its own user,
// phone, updates state (pts, qts, seq, date), message ids, calls and
// pushes. A Server starts with one account, the default (SelfID, phone
// SelfPhone), on which the Server's own methods act; AddAccount adds more.
//
// An auth key acts as the account it signed in as (auth.signIn with the
// account's phone; a phone no account has signs in as the default
// account). With Options.Authorized, a key that did not sign in acts as
// the default account, and may still sign in as another; or, not signed
// in yet, it acts as the account whose user id is the api_id of its
// initConnection (a calld config's api_id = SelfID() picks the account
// without a login). Pushes of an
// account go only to the sessions whose key acts as it; its calls are
// visible only to them (another account's call is CALL_PEER_INVALID).
type Account struct {
	s     *Server
	id    int64
	phone string

	// Guarded by s.mu.
	pts, qts, seq int
	ptsFloor      int // history holds every pts event after this pts
	history       []ptsEvent
	dated         []datedUpdate
	lastMsgID     int
	counts        map[string]int // requests received from its keys

	// Push faults.
	drop    int
	dup     bool
	reorder bool
	tooLong bool
	held    *heldPush
}

// firstAccount is the user id of the first account AddAccount adds.
const firstAccount = SelfID + 1

// newAccountLocked creates the account's user and the account.
func (s *Server) newAccountLocked(id int64, phone, username, first string) *Account {
	s.state.users[id] = &tg.User{
		ID:         id,
		AccessHash: accessHash(id),
		FirstName:  first,
		LastName:   "Self",
		Username:   username,
		Phone:      phone,
	}
	s.state.byName[username] = id
	a := &Account{s: s, id: id, phone: phone, counts: map[string]int{}}
	s.state.accts = append(s.state.accts, a)
	return a
}

// AddAccount adds an account with this phone (digits, a leading "+" is
// ignored) and returns it; adding a phone that exists returns its account.
// Its user id is SelfID+1 for the first added account, then +2, …
func (s *Server) AddAccount(phone string) *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accountByPhoneLocked(phone); a != nil {
		return a
	}
	id := firstAccount + int64(len(s.state.accts)-1)
	return s.newAccountLocked(id, normPhone(phone), fmt.Sprintf("sim_account_%d", id), "Sim")
}

// Account returns the default account, on which the Server's methods act.
func (s *Server) Account() *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.accts[0]
}

// Accounts returns every account, the default first, then in the order
// they were added.
func (s *Server) Accounts() []*Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Account(nil), s.state.accts...)
}

func normPhone(p string) string { return strings.TrimPrefix(strings.TrimSpace(p), "+") }

// accountByPhoneLocked is the account with this phone, nil if none.
func (s *Server) accountByPhoneLocked(phone string) *Account {
	p := normPhone(phone)
	for _, a := range s.state.accts {
		if a.phone == p {
			return a
		}
	}
	return nil
}

// bindByAPIIDLocked binds auth key keyID to the account whose user id is
// apiID (the api_id of an initConnection), with Options.Authorized and
// when the key is not bound yet: a daemon picks its account through its
// config (api_id) without a login step.
func (s *Server) bindByAPIIDLocked(keyID [8]byte, apiID int) {
	if !s.opts.Authorized || apiID == 0 || s.state.loggedIn[keyID] != nil {
		return
	}
	for _, a := range s.state.accts {
		if a.id == int64(apiID) {
			s.state.loggedIn[keyID] = a
			return
		}
	}
}

// signInAccountLocked is the account auth.signIn with phone logs in: the
// one with that phone, else the default account.
func (s *Server) signInAccountLocked(phone string) *Account {
	if a := s.accountByPhoneLocked(phone); a != nil {
		return a
	}
	return s.state.accts[0]
}

// SelfID is the id of the account's user.
func (a *Account) SelfID() int64 { return a.id }

// Phone is the account's phone number (digits, no "+").
func (a *Account) Phone() string { return a.phone }

// State returns the account's update state.
func (a *Account) State() (pts, qts, seq, date int) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	return a.pts, a.qts, a.seq, a.s.dateLocked()
}

// Count is how many requests of method arrived from auth keys acting as
// this account (a request before the key signed in counts for no account).
func (a *Account) Count(method string) int {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	return a.counts[method]
}

// WaitCount blocks until at least n requests of method arrived from this
// account's keys, or ctx is done.
func (a *Account) WaitCount(ctx context.Context, method string, n int) error {
	return a.s.waitCount(ctx, a.counts, method, n)
}

// Calls returns the account's calls, oldest first.
func (a *Account) Calls() []CallInfo {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	var out []CallInfo
	for id := int64(firstCall); id < a.s.state.nextCall; id++ {
		if c, ok := a.s.state.calls[id]; ok && c.acct == a {
			out = append(out, c.info)
		}
	}
	return out
}

// Push sends updates to the account as one `updates` container (seq+1).
func (a *Account) Push(updates ...tg.UpdateClass) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.pushLocked(0, updates...)
}

// SendMessage makes user `from` send a text message to the account (a pts
// event pushed); it returns the account's new pts.
func (a *Account) SendMessage(from int64, text string) (pts int) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	u := a.textMessageLocked(from, a.id, text)
	a.pushLocked(0, u)
	return u.Pts
}
