package callkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gotd/td/tg"
)

// TestCallDHRoundTrip: both halves of an exchange saved as JSON and
// restored give the same key; a tampered record is refused; the secret
// never prints.
func TestCallDHRoundTrip(t *testing.T) {
	out, in := dhPair(t)
	reload := func(s CallDH) CallDH {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var r CallDH
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	out2, err := RestoreOutgoing(reload(out.Saved()))
	if err != nil {
		t.Fatal(err)
	}
	in2, err := RestoreIncoming(reload(in.Saved()))
	if err != nil {
		t.Fatal(err)
	}
	if out2.ID() != 77 || out2.AccessHash() != 5 || in2.ID() != 77 || in2.AccessHash() != 6 {
		t.Fatalf("ids: %v %v", out2, in2)
	}
	keyA, fpA, err := OnAccepted(out2, &tg.PhoneCallAccepted{ID: 77, GB: in.b.gx})
	if err != nil {
		t.Fatal(err)
	}
	keyB, fpB, err := CompleteIncoming(in2, &tg.PhoneCall{ID: 77, GAOrB: out.a.gx, KeyFingerprint: fpA})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keyA, keyB) || fpA != fpB {
		t.Fatal("restored halves disagree on the key")
	}

	bad := out.Saved()
	bad.X = append([]byte(nil), bad.X...)
	bad.X[0] ^= 1
	if _, err := RestoreOutgoing(bad); !errors.Is(err, ErrBadDH) {
		t.Fatalf("tampered secret: %v", err)
	}
	noHash := in.Saved()
	noHash.GAHash = nil
	if _, err := RestoreIncoming(noHash); err == nil {
		t.Fatal("incoming half without g_a_hash restored")
	}
	if _, err := RestoreOutgoing(CallDH{}); !errors.Is(err, ErrBadDH) {
		t.Fatalf("empty record: %v", err)
	}
	s := out.Saved()
	if p := fmt.Sprintf("%v %+v %#v", s, s, s); strings.Contains(p, out.a.x.String()) {
		t.Fatalf("secret printed: %s", p)
	}
}
