package mtproto

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gotd/td/session"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"

	"github.com/calld/calld/internal/logging"
	"github.com/calld/calld/internal/mtproto/middleware"
	"github.com/calld/calld/internal/sim"
)

// answers is a LoginAnswers with fixed replies that counts the questions.
type answers struct {
	mu                    sync.Mutex
	phone, code, password string
	asked                 []string
}

func (a *answers) ask(q string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, q)
}

func (a *answers) Phone(context.Context) (string, error) { a.ask("phone"); return a.phone, nil }
func (a *answers) Code(_ context.Context, sent *tg.AuthSentCode) (string, error) {
	a.ask("code")
	if sent == nil || sent.PhoneCodeHash == "" {
		return "", errors.New("no sent code")
	}
	return a.code, nil
}
func (a *answers) Password(context.Context) (string, error) {
	a.ask("password")
	return a.password, nil
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogin(t *testing.T) {
	const password = "correct horse battery"
	srv := sim.Start(t, sim.Options{Authorized: false, Password: password})
	var logs syncBuffer
	cfg := simConfig(t, srv, srv.Addr())
	cfg.Session = new(session.StorageMemory)
	cfg.Log = zerolog.New(&logs).With().Timestamp().Logger()
	cfg.LogLevel = "debug"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c, srv)
	ctx := testCtx(t)

	ok, _, err := c.Authorized(ctx)
	if err != nil || ok {
		t.Fatalf("before login: authorized=%v err=%v", ok, err)
	}
	_, err = c.API().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
	if !errors.Is(err, middleware.ErrUnauthorized) {
		t.Fatalf("RPC before login: err = %v, want middleware.ErrUnauthorized", err)
	}
	if code, status := middleware.APIErrorCode(err); code != "unauthorized" || status != 401 {
		t.Errorf("middleware.APIErrorCode = %s %d", code, status)
	}

	tests := []struct {
		name      string
		ans       *answers
		wantIs    error
		wantAsked string
	}{
		{"wrong code", &answers{phone: "+" + sim.SelfPhone, code: "00000"}, middleware.ErrPhoneCodeInvalid, "phone,code"},
		{"wrong password", &answers{phone: "+" + sim.SelfPhone, code: sim.LoginCode, password: "nope"}, middleware.ErrPasswordInvalid, "phone,code,password"},
		{"right", &answers{phone: "+" + sim.SelfPhone, code: sim.LoginCode, password: password}, nil, "phone,code,password"},
		{"already authorized asks nothing", &answers{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			self, err := c.Login(ctx, tt.ans)
			if tt.wantIs == nil && (err != nil || self != sim.SelfID) {
				t.Fatalf("login: user %d (%v), want %d", self, err, sim.SelfID)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if got := strings.Join(tt.ans.asked, ","); got != tt.wantAsked {
				t.Errorf("asked %q, want %q", got, tt.wantAsked)
			}
		})
	}
	ok, self, err := c.Authorized(ctx)
	if err != nil || !ok || self != srv.SelfID() {
		t.Fatalf("after login: authorized=%v self=%d err=%v", ok, self, err)
	}

	out := logs.String()
	if !strings.Contains(out, logging.MaskPhone("+"+sim.SelfPhone)) {
		t.Errorf("logs lack the masked phone:\n%s", out)
	}
	for _, secret := range []string{sim.SelfPhone, password, "test-api-hash", `"` + sim.LoginCode + `"`} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain the secret %q", secret)
		}
	}
}
