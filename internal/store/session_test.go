package store

import (
	"context"
	"errors"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gotd/td/session"
	"github.com/gotd/td/tg"
)

func TestSessionServers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		save    *session.Data // saved through gotd's session.Loader
		raw     []byte        // else stored as is
		want    SessionServers
		ok      bool
		wantErr bool
	}{
		{name: "none"},
		{name: "production login", save: &session.Data{
			DC: 2, Addr: "149.154.167.51:443", AuthKey: []byte{1, 2, 3},
			Config: session.Config{ThisDC: 2, DCOptions: []tg.DCOption{{ID: 2, IPAddress: "149.154.167.51", Port: 443}, {ID: 4, IPAddress: "2001:67c:4e8:f004::b", Port: 443}}},
		}, want: SessionServers{DC: 2, Addrs: []string{"149.154.167.51:443", "149.154.167.51:443", "[2001:67c:4e8:f004::b]:443"}}, ok: true},
		{name: "test DCs", save: &session.Data{DC: 1, Config: session.Config{TestMode: true}},
			want: SessionServers{DC: 1, TestMode: true}, ok: true},
		{name: "not gotd's format", raw: []byte("\x00garbage"), wantErr: true},
		{name: "other version", raw: []byte(`{"Version":2,"Data":{}}`), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openT(t, tempDB(t), Options{})
			defer db.Close()
			ss := db.SessionStorage()
			switch {
			case tc.save != nil:
				if err := (&session.Loader{Storage: ss}).Save(ctx, tc.save); err != nil {
					t.Fatal(err)
				}
			case tc.raw != nil:
				if err := ss.StoreSession(ctx, tc.raw); err != nil {
					t.Fatal(err)
				}
			}
			got, ok, err := ss.Servers(ctx)
			if (err != nil) != tc.wantErr || ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Servers() = %+v, %v, %v; want %+v, %v, error %v", got, ok, err, tc.want, tc.ok, tc.wantErr)
			}
		})
	}
}

// TestAccount: a file records one account; another is refused and leaves
// it as it was, as does a malformed id; the account outlives a reopen.
func TestAccount(t *testing.T) {
	path := tempDB(t)
	db := openT(t, path, Options{})
	account := func() int64 {
		t.Helper()
		var id int64
		if err := db.View(func(tx *Tx) error {
			var err error
			id, err = tx.Account()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	if id := account(); id != 0 {
		t.Fatalf("a new file's account: %d", id)
	}
	for _, tc := range []struct {
		set     int64
		wantErr bool
		want    int64
	}{
		{set: 0, wantErr: true, want: 0},
		{set: -5, wantErr: true, want: 0},
		{set: 100001, want: 100001},
		{set: 100001, want: 100001},
		{set: 100002, wantErr: true, want: 100001},
	} {
		err := db.Update(func(tx *Tx) error { return tx.SetAccount(tc.set) })
		if (err != nil) != tc.wantErr {
			t.Fatalf("SetAccount(%d): %v, want error %v", tc.set, err, tc.wantErr)
		}
		if id := account(); id != tc.want {
			t.Fatalf("after SetAccount(%d): account %d, want %d", tc.set, id, tc.want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openT(t, path, Options{})
	defer db.Close()
	if id := account(); id != 100001 {
		t.Fatalf("after a reopen: account %d", id)
	}
	for _, raw := range [][]byte{{1, 2, 3}, {0x80, 0, 0, 0, 0, 0, 0, 1}} {
		if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kAccount, raw) }); err != nil {
			t.Fatal(err)
		}
		err := db.View(func(tx *Tx) error { _, err := tx.Account(); return err })
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("account %x: %v, want ErrCorrupt", raw, err)
		}
	}
}
