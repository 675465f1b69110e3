package sim

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Fixed user ids of the simulated world.
const (
	// SelfID is the id of the simulated account.
	SelfID int64 = 100001
	// ServiceID is Telegram's service notifications user (777000), the
	// sender of the messages OpenGap creates.
	ServiceID int64 = 777000
	firstPeer int64 = 200001
	firstCall int64 = 5000000001
)

// state is everything the server knows; guarded by Server.mu.
type state struct {
	// Users.
	users    map[int64]*tg.User
	byName   map[string]int64
	nextUser int64

	// Accounts (accounts.go): accts[0] is the default account. An auth
	// key is bound to the account it signed in as.
	accts        []*Account
	loggedIn     map[[8]byte]*Account
	needPassword map[[8]byte]*Account

	// Sessions and RPC bookkeeping.
	sessions map[int64]*sessionInfo
	reqs     map[reqKey]*reqEntry
	reqOrder []reqKey
	records  []Record
	counts   map[string]int // received
	executed map[string]int
	dropped  map[string]int
	heldRPCs map[string]int // requests waiting for a HoldRPC release
	changed  chan struct{}
	fails    map[string]*failRule
	holds    map[string]chan struct{}
	noAck    bool // tests: do not acknowledge, so gotd re-sends
	resends  int  // re-sent requests seen
	service  int  // service messages (msgs_ack…) seen

	// Pushes sent (every account's).
	sent     []sentPush
	sentBase int

	// Calls.
	calls     map[int64]*call
	behaviour map[int64]Behaviour
	nextCall  int64
	srp       *srpState
	needDebug bool // calls ended from now on ask for a debug log (SetNeedDebug)
}

func (st *state) init() {
	st.users = map[int64]*tg.User{}
	st.byName = map[string]int64{}
	st.nextUser = firstPeer
	st.loggedIn = map[[8]byte]*Account{}
	st.needPassword = map[[8]byte]*Account{}
	st.sessions = map[int64]*sessionInfo{}
	st.reqs = map[reqKey]*reqEntry{}
	st.counts = map[string]int{}
	st.executed = map[string]int{}
	st.dropped = map[string]int{}
	st.heldRPCs = map[string]int{}
	st.changed = make(chan struct{})
	st.fails = map[string]*failRule{}
	st.holds = map[string]chan struct{}{}
	st.calls = map[int64]*call{}
	st.behaviour = map[int64]Behaviour{}
	st.nextCall = firstCall

	st.users[ServiceID] = &tg.User{
		Verified:   true,
		Support:    true,
		ID:         ServiceID,
		AccessHash: accessHash(ServiceID),
		FirstName:  "Telegram",
		Phone:      "42777",
	}
}

// isAccountLocked reports whether user id is one of the accounts.
func (s *Server) isAccountLocked(id int64) bool {
	for _, a := range s.state.accts {
		if a.id == id {
			return true
		}
	}
	return false
}

func accessHash(id int64) int64 { return id*7919 ^ 0x5eed5eed }

// SelfID is the id of the default account's user.
func (s *Server) SelfID() int64 { return SelfID }

// AddPeer adds a user the account can call or be called by, found by
// users.getUsers and contacts.resolveUsername. Adding an existing username
// returns the existing id. The access hash is AccessHash(id).
func (s *Server) AddPeer(username string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.TrimPrefix(strings.ToLower(username), "@")
	if id, ok := s.state.byName[name]; ok && name != "" {
		return id
	}
	id := s.state.nextUser
	s.state.nextUser++
	s.state.users[id] = &tg.User{
		Contact:    true,
		ID:         id,
		AccessHash: accessHash(id),
		FirstName:  username,
		Username:   name,
		Phone:      fmt.Sprintf("1555%07d", id%10000000),
	}
	if name != "" {
		s.state.byName[name] = id
	}
	return id
}

// AccessHash is the access hash the server gives user id.
func (s *Server) AccessHash(id int64) int64 { return accessHash(id) }

// User returns a copy of a known user.
func (s *Server) User(id int64) (tg.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.state.users[id]
	if !ok {
		return tg.User{}, false
	}
	return *u, true
}

// usersLocked returns copies of the known users among ids, as account a
// sees them (its own user has self set).
func (a *Account) usersLocked(ids ...int64) []tg.UserClass {
	seen := map[int64]bool{}
	var out []tg.UserClass
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if u, ok := a.s.state.users[id]; ok {
			c := *u
			c.Self = id == a.id
			out = append(out, &c)
		}
	}
	return out
}

func (a *Account) allUsersLocked() []tg.UserClass {
	ids := make([]int64, 0, len(a.s.state.users))
	for id := range a.s.state.users {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return a.usersLocked(ids...)
}

// accountOfLocked is the account auth key keyID acts as: the one it signed
// in as; with Options.Authorized, the default account for a key that did
// not sign in; nil when the key is not authorized.
func (s *Server) accountOfLocked(keyID [8]byte) *Account {
	if a := s.state.loggedIn[keyID]; a != nil {
		return a
	}
	if s.opts.Authorized {
		return s.state.accts[0]
	}
	return nil
}

func (s *Server) dateLocked() int { return int(s.now().Unix()) }

// resolveInputUserLocked maps an InputUser to a known user id.
func (a *Account) resolveInputUserLocked(in tg.InputUserClass) (int64, error) {
	switch u := in.(type) {
	case *tg.InputUserSelf:
		return a.id, nil
	case *tg.InputUser:
		if _, ok := a.s.state.users[u.UserID]; ok && u.AccessHash == accessHash(u.UserID) {
			return u.UserID, nil
		}
	}
	return 0, tgerr.New(400, "USER_ID_INVALID")
}
