package store

import (
	"context"
	"reflect"
	"testing"

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
