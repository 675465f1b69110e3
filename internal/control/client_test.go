package control

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

func TestClient(t *testing.T) {
	ctx := context.Background()
	env := start(t, Options{}, 0)
	c := env.client

	st, err := c.Status(ctx)
	if err != nil || st.Telegram.SelfID != 9007199254740997 || st.Updates.Pts != 10 || st.Calls.Live != 2 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	calls, err := c.Calls(ctx, false)
	if err != nil || len(calls) != 2 || calls[0].ID != idRinging {
		t.Errorf("Calls = %+v, %v", calls, err)
	}
	all, err := c.Calls(ctx, true)
	if err != nil || len(all) != 3 {
		t.Errorf("Calls(all) = %d, %v", len(all), err)
	}
	call, err := c.Call(ctx, idActive)
	if err != nil || call.ID != idActive || call.ActiveAt == nil || call.ActiveAt.Location() != time.UTC {
		t.Errorf("Call = %+v, %v", call, err)
	}
	m, err := c.Media(ctx, idActive)
	if err != nil || string(m.Key) != "\x00\x01\x02\xfe\xff" || string(m.Connections[0].PeerTag) != "tag" || m.KeyFingerprint != -7 {
		t.Errorf("Media = %+v, %v", m, err)
	}
	call, err = c.SetConnection(ctx, idActive, 56)
	if err != nil || call.ConnectionID != 56 {
		t.Errorf("SetConnection = %+v, %v", call, err)
	}
	call, err = c.Accept(ctx, idRinging)
	if err != nil || call.State != calld.StateAccepting {
		t.Errorf("Accept = %+v, %v", call, err)
	}
	call, err = c.Discard(ctx, idRinging, calld.ReasonBusy)
	if err != nil || call.State != calld.StateEnded || call.Reason != calld.ReasonBusy {
		t.Errorf("Discard = %+v, %v", call, err)
	}
	call, err = c.Place(ctx, "@carol", true)
	if err != nil || call.State != calld.StateWaiting || !call.Video {
		t.Errorf("Place = %+v, %v", call, err)
	}
	for _, step := range []struct {
		step calld.LoginStep
		want string
	}{{calld.LoginStep{}, calld.LoginPhoneNeeded}, {calld.LoginStep{Phone: "+15550000"}, calld.LoginCodeSent},
		{calld.LoginStep{Code: "12345"}, calld.LoginPasswordNeeded}, {calld.LoginStep{Password: "hunter2"}, calld.LoginAuthorized}} {
		ls, err := c.Login(ctx, step.step)
		if err != nil || ls.State != step.want {
			t.Errorf("Login(%+v) = %+v, %v; want %s", step.step, ls, err, step.want)
		}
	}
	var seqs []uint64
	if err := c.Events(ctx, client.EventsOptions{Replay: true, Since: 3}, func(ev calld.Event) error {
		seqs = append(seqs, ev.Seq)
		return nil
	}); err != nil || !slicesEqual(seqs, []uint64{4, 5}) {
		t.Errorf("Events = %v, %v", seqs, err)
	}
	stop := errors.New("stop")
	if err := c.Events(ctx, client.EventsOptions{}, func(calld.Event) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Events with a failing callback = %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	env := start(t, Options{}, 0)
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"not found", func() error { _, err := env.client.Call(ctx, idUnknown); return err }, calld.ENOTFOUND},
		{"conflict", func() error { _, err := env.client.Discard(ctx, idEnded, calld.ReasonAuto); return err }, calld.ECONFLICT},
		{"invalid reason", func() error { _, err := env.client.Discard(ctx, idRinging, "rude"); return err }, calld.EINVALID},
		{"telegram error", func() error { _, err := env.client.Place(ctx, "@invalid_peer", false); return err }, "CALL_PEER_INVALID"},
		{"invalid peer", func() error { _, err := env.client.Place(ctx, "", false); return err }, calld.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ce *calld.Error
			if !errors.As(err, &ce) || ce.Code != tt.code || ce.Message == "" {
				t.Errorf("error %v, want *calld.Error with code %s", err, tt.code)
			}
		})
	}
	t.Run("events error line", func(t *testing.T) {
		env.svc.journalErr = calld.Errorf(calld.EUNAVAILABLE, "store closed")
		err := env.client.Events(ctx, client.EventsOptions{Replay: true}, func(calld.Event) error { return nil })
		if calld.ErrorCode(err) != calld.EUNAVAILABLE {
			t.Errorf("replay with a failing journal: %v, want unavailable", err)
		}
	})
}
