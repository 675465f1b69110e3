package sim

import (
	"context"
	"testing"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// phoneAuth signs in with a given phone and LoginCode.
type phoneAuth struct {
	codeAuth
	phone string
}

func (a phoneAuth) Phone(context.Context) (string, error) { return a.phone, nil }

// accountWorld is the shared server (Options.Authorized) with three
// accounts (the default and two added), each with its own client: the
// default account's client is the shared one, which never signed in (an
// authorized key acts as the default account), the second signs in with
// its account's phone, the third never signs in but its api_id is its
// account's user id. (A client's handshake costs many seconds under -race
// on a loaded machine: only two new ones.)
type accountWorld struct {
	srv     *Server
	accts   []*Account
	clients []*testClient
	peer    int64
}

func newAccountWorld(t *testing.T) accountWorld {
	t.Helper()
	srv := sharedServer(t)
	w := accountWorld{srv: srv, peer: srv.AddPeer("carol")}
	w.accts = []*Account{srv.Account(), srv.AddAccount("+15550000002"), srv.AddAccount("15550000003")}
	if got := srv.AddAccount("15550000002"); got != w.accts[1] {
		t.Fatal("adding an existing phone made a new account")
	}
	ctx := testCtx(t)
	for _, a := range w.accts {
		var c *testClient
		switch a {
		case w.accts[0]:
			c = startClient(t, srv, sharedStore)
		case w.accts[1]:
			c = startClient(t, srv, &session.StorageMemory{})
		case w.accts[2]:
			c = startClientAs(t, srv, &session.StorageMemory{}, int(a.SelfID()))
		}
		if a == w.accts[1] {
			flow := auth.NewFlow(phoneAuth{codeAuth: codeAuth{code: LoginCode}, phone: "+" + a.Phone()}, auth.SendCodeOptions{})
			if err := flow.Run(ctx, c.client.Auth()); err != nil {
				t.Fatalf("login as %s: %v", a.Phone(), err)
			}
		}
		self, err := c.client.Self(ctx)
		if err != nil || self.ID != a.SelfID() || !self.Self {
			t.Fatalf("self of %s: %+v %v, want user %d", a.Phone(), self, err, a.SelfID())
		}
		// A first request that receives updates, after the login.
		if _, err := c.api.UpdatesGetState(ctx); err != nil {
			t.Fatal(err)
		}
		w.clients = append(w.clients, c)
	}
	return w
}

// sessionsOf is the MTProto sessions that made requests as account a.
func (w accountWorld) sessionsOf(a *Account) map[int64]bool {
	out := map[int64]bool{}
	for _, r := range w.srv.Requests() {
		if r.Account == a.SelfID() {
			out[r.Session] = true
		}
	}
	return out
}

// TestAccountsDoNotCross: each of three accounts gets a call; its pushes
// go only to its own sessions, its state moves alone, the other accounts
// cannot see or end the call, and its own discard counts for it alone.
// Then a message to one account is in its getDifference only.
func TestAccountsDoNotCross(t *testing.T) {
	w := newAccountWorld(t)
	ctx := testCtx(t)
	type start struct{ pts, seq, discards int }
	starts := make([]start, len(w.accts))
	for i, a := range w.accts {
		starts[i].pts, _, starts[i].seq, _ = a.State()
		starts[i].discards = a.Count("phone.discardCall")
	}
	allDiscards := w.srv.Count("phone.discardCall")
	ids := make([]int64, len(w.accts))
	for i, a := range w.accts {
		c := w.clients[i]
		before := make([]int, len(w.accts))
		for j, o := range w.accts {
			_, _, before[j], _ = o.State()
		}
		mark := w.srv.sentMark()
		id, err := a.IncomingCall(w.peer, false)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
		mine := w.sessionsOf(a)
		sent := w.srv.sentSince(mark)
		if len(sent) == 0 {
			t.Fatalf("account %d: nothing pushed", i)
		}
		for _, p := range sent {
			if !mine[p.session] {
				t.Fatalf("account %d: push to session %d, not one of its own %v", i, p.session, mine)
			}
		}
		pc, ok := phoneCallOf(c.next(t, func(u tg.UpdatesClass) bool {
			r, ok := phoneCallOf(u).(*tg.PhoneCallRequested)
			return ok && r.ID == id
		})).(*tg.PhoneCallRequested)
		if !ok || pc.ParticipantID != a.SelfID() || pc.AdminID != w.peer {
			t.Fatalf("account %d: pushed %+v", i, pc)
		}
		for j, o := range w.accts {
			_, _, seq, _ := o.State()
			if want := before[j] + map[bool]int{true: 1}[j == i]; seq != want {
				t.Fatalf("account %d's call: account %d seq %d, want %d", i, j, seq, want)
			}
		}
		in := tg.InputPhoneCall{ID: id, AccessHash: pc.AccessHash}
		other := w.clients[(i+1)%len(w.clients)]
		if _, err := other.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{Peer: in, Reason: &tg.PhoneCallDiscardReasonBusy{}}); !tgerr.Is(err, "CALL_PEER_INVALID") {
			t.Fatalf("account %d's call discarded by another account: %v, want CALL_PEER_INVALID", i, err)
		}
		if _, err := c.api.PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{Peer: in, Reason: &tg.PhoneCallDiscardReasonBusy{}}); err != nil {
			t.Fatalf("account %d: own discard: %v", i, err)
		}
		if info, _ := w.srv.Call(id); info.State != StateDiscarded || info.DiscardedBy != BySelf {
			t.Fatalf("account %d: call %+v", i, info)
		}
	}
	ptsNow := make([]int, len(w.accts))
	for i, a := range w.accts {
		has := map[int64]bool{}
		for _, c := range a.Calls() {
			has[c.ID] = true
		}
		for j, id := range ids {
			if has[id] != (i == j) {
				t.Fatalf("account %d: has call of account %d: %v", i, j, has[id])
			}
		}
		// Its own discard, and the failed one of the account before it.
		if n := a.Count("phone.discardCall") - starts[i].discards; n != 2 {
			t.Fatalf("account %d: %d discards, want 2", i, n)
		}
		if err := a.WaitCount(ctx, "phone.discardCall", starts[i].discards+2); err != nil {
			t.Fatal(err)
		}
		pts, _, seq, _ := a.State()
		if pts != starts[i].pts+1 || seq != starts[i].seq+2 {
			t.Fatalf("account %d: pts %d seq %d, want +1 and +2 from %+v (its call and its end)", i, pts, seq, starts[i])
		}
		ptsNow[i] = pts
	}
	if n := w.srv.Count("phone.discardCall") - allDiscards; n != 6 {
		t.Fatalf("server saw %d discards, want 6", n)
	}

	// getDifference from after the calls: only b's message.
	w.accts[1].SendMessage(w.peer, "to b")
	for i, c := range w.clients {
		diff, err := c.api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: ptsNow[i], Date: int(w.srv.now().Unix()) + 1})
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		if d, ok := diff.(*tg.UpdatesDifference); ok {
			for _, m := range d.NewMessages {
				texts = append(texts, m.(*tg.Message).Message)
			}
		}
		want := map[bool]int{true: 1}[i == 1]
		if len(texts) != want {
			t.Fatalf("account %d: difference messages %q, want %d", i, texts, want)
		}
	}
}
