package sim

import (
	"crypto/x509"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

func TestPublicKeyPEM(t *testing.T) {
	srv := sharedServer(t)
	block, rest := pem.Decode(srv.PublicKeyPEM())
	if block == nil || len(rest) != 0 {
		t.Fatalf("PublicKeyPEM is not one PEM block")
	}
	if block.Type != "RSA PUBLIC KEY" {
		t.Fatalf("block type %q, want RSA PUBLIC KEY", block.Type)
	}
	pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse PKCS#1: %v", err)
	}
	if !pub.Equal(srv.PublicKey()) {
		t.Fatal("PEM key differs from PublicKey()")
	}
}

func TestHandshakeConfigUsers(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("alice")
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)

	cfg, err := c.api.HelpGetConfig(ctx)
	if err != nil {
		t.Fatalf("help.getConfig: %v", err)
	}
	_, port, _ := strings.Cut(srv.Addr(), ":")
	if cfg.ThisDC != srv.DC() || cfg.CallReceiveTimeoutMs != 7000 || cfg.CallRingTimeoutMs != 33000 ||
		len(cfg.DCOptions) != 1 || strconv.Itoa(cfg.DCOptions[0].Port) != port || cfg.DCOptions[0].IPAddress != "127.0.0.1" {
		t.Fatalf("config: this_dc=%d recv=%d ring=%d dc_options=%+v (addr %s)",
			cfg.ThisDC, cfg.CallReceiveTimeoutMs, cfg.CallRingTimeoutMs, cfg.DCOptions, srv.Addr())
	}

	tests := []struct {
		name  string
		in    []tg.InputUserClass
		want  []int64
		wantS bool
	}{
		{"self", []tg.InputUserClass{&tg.InputUserSelf{}}, []int64{SelfID}, true},
		{"peer", []tg.InputUserClass{&tg.InputUser{UserID: peer, AccessHash: srv.AccessHash(peer)}}, []int64{peer}, false},
		{"wrong hash left out", []tg.InputUserClass{&tg.InputUser{UserID: peer, AccessHash: 1}}, nil, false},
		{"unknown left out", []tg.InputUserClass{&tg.InputUser{UserID: 42, AccessHash: 1}}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := c.api.UsersGetUsers(ctx, tt.in)
			if err != nil {
				t.Fatalf("users.getUsers: %v", err)
			}
			if len(users) != len(tt.want) {
				t.Fatalf("got %d users, want %d", len(users), len(tt.want))
			}
			for i, u := range users {
				uu := u.(*tg.User)
				if uu.ID != tt.want[i] || uu.Self != tt.wantS || uu.AccessHash != srv.AccessHash(uu.ID) {
					t.Fatalf("user %d: %+v", i, uu)
				}
			}
		})
	}

	res, err := c.api.ContactsResolveUsername(ctx, "@Alice")
	if err != nil {
		t.Fatalf("contacts.resolveUsername: %v", err)
	}
	if p, ok := res.Peer.(*tg.PeerUser); !ok || p.UserID != peer || len(res.Users) != 1 {
		t.Fatalf("resolved %+v", res)
	}
	if _, err := c.api.ContactsResolveUsername(ctx, "nobody"); !tgerr.Is(err, "USERNAME_NOT_OCCUPIED") {
		t.Fatalf("resolve unknown: %v, want USERNAME_NOT_OCCUPIED", err)
	}

	st, err := c.api.UpdatesGetState(ctx)
	if err != nil {
		t.Fatalf("updates.getState: %v", err)
	}
	pts, qts, seq, date := srv.State()
	if st.Pts != pts || st.Qts != qts || st.Seq != seq || st.Date != date || date != int(sharedClock.Now().Unix()) {
		t.Fatalf("getState %+v, server %d/%d/%d/%d", st, pts, qts, seq, date)
	}
	if srv.Count("updates.getState") == 0 || srv.Count("help.getConfig") == 0 {
		t.Fatal("requests not recorded")
	}
	var found bool
	for _, r := range srv.Requests() {
		if r.Method == "contacts.resolveUsername" {
			if rr, ok := r.Req.(*tg.ContactsResolveUsernameRequest); ok && rr.Username == "@Alice" {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("contacts.resolveUsername not in Requests() with its decoded request")
	}
}

func TestPushReceived(t *testing.T) {
	srv := sharedServer(t)
	peer := srv.AddPeer("bob")
	c := startClient(t, srv, sharedStore)
	c.drain()

	pts := srv.SendMessage(peer, "hello")
	u := c.next(t, nil)
	ups, ok := u.(*tg.Updates)
	if !ok || len(ups.Updates) != 1 {
		t.Fatalf("pushed %T %+v", u, u)
	}
	nm, ok := ups.Updates[0].(*tg.UpdateNewMessage)
	if !ok || nm.Pts != pts || nm.PtsCount != 1 {
		t.Fatalf("update %+v", ups.Updates[0])
	}
	m := nm.Message.(*tg.Message)
	if m.Message != "hello" || m.FromID.(*tg.PeerUser).UserID != peer {
		t.Fatalf("message %+v", m)
	}
	_, _, seq, date := srv.State()
	if ups.Seq != seq || ups.Date != date {
		t.Fatalf("container seq %d date %d, server seq %d date %d", ups.Seq, ups.Date, seq, date)
	}
}

// TestRequests: every constructor in the table of requests the server
// decodes makes the request its id names, and the table is exactly what
// handleLocked answers: each of tg's other constructors gets
// INPUT_METHOD_INVALID from it, none in the table does (a case added to
// handleLocked but not to the table would answer INPUT_METHOD_INVALID
// over the wire).
func TestRequests(t *testing.T) {
	names := tg.TypesMap()
	for id, newReq := range requests {
		req := newReq()
		got, ok := req.(interface{ TypeID() uint32 })
		if !ok || got.TypeID() != id {
			t.Errorf("requests[%#x] (%s) makes %T", id, names[id], req)
		}
	}
	invalid := func(obj bin.Object) (yes bool) {
		defer func() {
			if recover() != nil {
				yes = false // handled: it went on to use the (absent) account
			}
		}()
		_, err := (&Server{}).handleLocked(&rpcCtx{}, obj)
		return tgerr.Is(err, "INPUT_METHOD_INVALID")
	}
	for id, ctor := range tg.TypesConstructorMap() {
		_, listed := requests[id]
		if got := invalid(ctor()); got == listed {
			t.Errorf("%s: in the table %v, answered INPUT_METHOD_INVALID %v", names[id], listed, got)
		}
	}
}

// TestUnansweredMethod: a Telegram method the server does not implement
// is answered INPUT_METHOD_INVALID and recorded by name, without a
// decoded request (the server decodes only the requests it answers).
func TestUnansweredMethod(t *testing.T) {
	srv := sharedServer(t)
	c := startClient(t, srv, sharedStore)
	ctx := testCtx(t)

	before := srv.Count("help.getAppConfig")
	if _, err := c.api.HelpGetAppConfig(ctx, 0); !tgerr.Is(err, "INPUT_METHOD_INVALID") {
		t.Fatalf("help.getAppConfig: %v, want INPUT_METHOD_INVALID", err)
	}
	if n := srv.Count("help.getAppConfig"); n != before+1 {
		t.Fatalf("help.getAppConfig recorded %d times, want %d", n, before+1)
	}
	recs := srv.Requests()
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Method == "help.getAppConfig" {
			if recs[i].Req != nil {
				t.Fatalf("recorded with request %T, want none", recs[i].Req)
			}
			return
		}
	}
	t.Fatal("help.getAppConfig not in Requests()")
}
