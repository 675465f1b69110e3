package mtproto

import (
	"context"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/gotd/td/tg"

	"github.com/calld/calld/internal/mtproto/middleware"
)

func TestNewConfigErrors(t *testing.T) {
	base := func() Config { return Config{APIID: 1, APIHash: "h"} }
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"custom dc options", func(c *Config) {
			c.DC = 3
			c.DCOptions = []DCOption{{ID: 2, Addr: "127.0.0.1:443"}, {ID: 3, Addr: "[::1]:8443"}}
		}, ""},
		{"no api id", func(c *Config) { c.APIID = 0 }, "api_id"},
		{"no api hash", func(c *Config) { c.APIHash = "" }, "api_hash"},
		{"negative dc", func(c *Config) { c.DC = -1 }, "dc must be > 0"},
		{"dc not in options", func(c *Config) { c.DCOptions = []DCOption{{ID: 4, Addr: "127.0.0.1:1"}} }, "dc 2 has no entry"},
		{"addr without port", func(c *Config) { c.DCOptions = []DCOption{{ID: 2, Addr: "127.0.0.1"}} }, "dc_options[0]: addr"},
		{"bad port", func(c *Config) { c.DCOptions = []DCOption{{ID: 2, Addr: "127.0.0.1:99999"}} }, "invalid port"},
		{"empty host", func(c *Config) { c.DCOptions = []DCOption{{ID: 2, Addr: ":443"}} }, "empty host"},
		{"zero id", func(c *Config) { c.DCOptions = []DCOption{{ID: 0, Addr: "127.0.0.1:1"}} }, "id must be > 0"},
		{"bad log level", func(c *Config) { c.LogLevel = "chatty" }, "log level"},
		{"nil key", func(c *Config) { c.PublicKeys = []*rsa.PublicKey{nil} }, "public key 0 is nil"},
		{"negative budget", func(c *Config) { c.RetryBudget = -1 }, "retry budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// failSink refuses RPC results.
type failSink struct{ *recordSink }

func (s failSink) Updates(ctx context.Context, u tg.UpdatesClass, own bool) error {
	if own {
		return errors.New("disk full")
	}
	return s.recordSink.Updates(ctx, u, own)
}

func TestUpdatesSinkErrorReachesCaller(t *testing.T) {
	sink := failSink{newRecordSink()}
	c, srv := newSimClient(t, sink, nil)
	req := incomingCall(t, srv, sink.recordSink, srv.AddPeer("sinkfail_peer"), false)
	u, err := c.DiscardCall(testCtx(t), Discard{Peer: tg.InputPhoneCall{ID: req.ID, AccessHash: req.AccessHash}, Reason: "busy"})
	if !errors.Is(err, middleware.ErrUpdatesSink) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want middleware.ErrUpdatesSink with the sink's error", err)
	}
	if u == nil {
		t.Fatal("the Updates result is lost when the sink fails")
	}
	if code, _ := middleware.APIErrorCode(err); code != "internal" {
		t.Errorf("middleware.APIErrorCode = %s, want internal", code)
	}
}
