package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
	"github.com/calld/calld/internal/store"
)

// leaks returns how the secret b shows in text, if it does: base64 at any
// alignment, hex, or Go's %v of a byte slice.
func leaks(text string, b []byte) string {
	if len(b) < 32 {
		return ""
	}
	for j := 0; j < 3; j++ {
		if s := base64.StdEncoding.EncodeToString(b[j : j+27]); strings.Contains(text, s) {
			return "base64 " + s
		}
		if s := base64.RawURLEncoding.EncodeToString(b[j : j+27]); strings.Contains(text, s) {
			return "base64url " + s
		}
	}
	if s := hex.EncodeToString(b[:16]); strings.Contains(strings.ToLower(text), s) {
		return "hex " + s
	}
	if s := strings.TrimSuffix(fmt.Sprint(b[:12]), "]"); strings.Contains(text, s) {
		return "%v " + s
	}
	return ""
}

// TestCallSecretsStayPrivate: a call's media key and DH secret, persisted
// for a restart (CONTRACT §5.1), never reach a log line at debug level or
// the call's API JSON, survive a SIGKILL unchanged, and leave the state
// file when the call ends.
func TestCallSecretsStayPrivate(t *testing.T) {
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d1 := e.start()
	cl := client.New(e.socket)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.srv.SetPeerBehaviour(e.srv.AddPeer("alice"), sim.Answer)
	c, err := cl.Place(ctx, "@alice", false)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ID
	e.waitCall(id, calld.StateActive)
	md, err := cl.Media(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	show, _, _ := e.cli("show", fmt.Sprint(id), "--json")
	list, _, _ := e.cli("calls", "--json")
	if d1.stop(t, syscall.SIGKILL) == 0 {
		t.Fatal("SIGKILL reported a clean exit")
	}

	var saved struct {
		Key      []byte `json:"key"`
		Outgoing struct {
			X []byte `json:"x"`
		} `json:"outgoing"`
	}
	readSecrets := func() ([]byte, error) {
		db, err := store.Open(e.state, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var b []byte
		err = db.View(func(tx *store.Tx) error {
			var err error
			b, err = tx.CallSecrets(id)
			return err
		})
		return b, err
	}
	b, err := readSecrets()
	if err != nil {
		t.Fatalf("the active call's secrets: %v", err)
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(saved.Key, md.Key) || len(saved.Outgoing.X) < 32 {
		t.Fatalf("persisted secrets: key %d bytes (equal %v), x %d bytes", len(saved.Key), bytes.Equal(saved.Key, md.Key), len(saved.Outgoing.X))
	}

	d2 := e.start()
	md2, err := cl.Media(ctx, id)
	if err != nil || !bytes.Equal(md2.Key, md.Key) {
		t.Fatalf("media after SIGKILL: %v (same key: %v)", err, err == nil && bytes.Equal(md2.Key, md.Key))
	}
	if c, err := cl.Discard(ctx, id, calld.ReasonAuto); err != nil || c.EndedBy != calld.EndedByLocal {
		t.Fatalf("discard: %+v, %v", c, err)
	}
	if d2.stop(t, syscall.SIGTERM) != 0 {
		t.Fatal("SIGTERM: not a clean exit")
	}
	if _, err := readSecrets(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the ended call's secrets: %v, want not found", err)
	}
	for what, text := range map[string]string{
		"show --json": show, "calls --json": list,
		"the first daemon's log": d1.logs.String(), "the second daemon's log": d2.logs.String(),
	} {
		if !strings.Contains(text, "{") {
			t.Fatalf("%s is empty", what)
		}
		for name, s := range map[string][]byte{"media key": md.Key, "DH secret a": saved.Outgoing.X} {
			if how := leaks(text, s); how != "" {
				t.Errorf("the %s is in %s (%s)", name, what, how)
			}
		}
	}
}
