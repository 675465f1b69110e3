package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// The media side end to end (CONTRACT §5.5, issue 15): a protocol
// override reaches phone.requestCall unchanged; the peer's three
// signaling payloads come through the route in order; a payload posted by
// the test reaches the peer byte for byte; a getDifference that repeats
// the signaling updates does not repeat a payload; once the call ended
// with need_rating (and need_debug) a rating and a debug log are accepted
// once, a second answers 409; no log line of the debug-level run holds a
// payload or the key.
func TestMediaSignalingRatingDebug(t *testing.T) {
	var simNow atomic.Int64 // the sim's clock, moved by the test
	simNow.Store(time.Now().Unix())
	e := newEnv(t, sim.Options{
		Authorized:        true,
		SignalingPayloads: 3,
		Now:               func() time.Time { return time.Unix(simNow.Load(), 0) },
	}, "")
	d := e.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := client.New(e.socket)
	defer cl.Close()

	bob := e.srv.AddPeer("bob")
	e.srv.SetPeerBehaviour(bob, sim.Answer)
	minLayer, maxLayer, p2p := 92, 92, false
	override := &calld.ProtocolOverride{UDPP2P: &p2p, MinLayer: &minLayer, MaxLayer: &maxLayer, LibraryVersions: []string{"11.0.0", "9.0.0"}}
	placed, err := cl.PlaceWith(ctx, calld.PlaceRequest{Peer: "@bob", Protocol: override})
	if err != nil {
		t.Fatal(err)
	}
	id := placed.ID
	var sent *tg.PhoneRequestCallRequest
	for _, r := range e.srv.Requests() {
		if req, ok := r.Req.(*tg.PhoneRequestCallRequest); ok {
			sent = req
		}
	}
	want := tg.PhoneCallProtocol{UDPReflector: true, MinLayer: 92, MaxLayer: 92, LibraryVersions: []string{"11.0.0", "9.0.0"}}
	if sent == nil {
		t.Fatal("the sim saw no phone.requestCall")
	}
	if got := sent.Protocol; got.UDPP2P != want.UDPP2P || got.UDPReflector != want.UDPReflector ||
		got.MinLayer != want.MinLayer || got.MaxLayer != want.MaxLayer || !reflect.DeepEqual(got.LibraryVersions, want.LibraryVersions) {
		t.Fatalf("phone.requestCall protocol\n got %+v\nwant %+v", got, want)
	}
	e.waitCall(id, calld.StateActive)
	media, err := cl.Media(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(media.Protocol.LibraryVersions, want.LibraryVersions) {
		t.Fatalf("/media protocol %+v: not the server's answer", media.Protocol)
	}

	// Follow the call's signaling from the start.
	payloads := make(chan calld.SignalingPayload, 16)
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- cl.Signaling(ctx, id, 0, true, func(p calld.SignalingPayload) error {
			payloads <- p
			return nil
		})
	}()
	next := func(seq uint64, data []byte) {
		t.Helper()
		select {
		case p := <-payloads:
			if p.Seq != seq || !bytes.Equal(p.Data, data) {
				t.Fatalf("payload %d %q, want %d %q", p.Seq, p.Data, seq, data)
			}
		case err := <-streamDone:
			t.Fatalf("signaling stream ended early: %v", err)
		case <-ctx.Done():
			t.Fatalf("no payload %d", seq)
		}
	}
	for n := 1; n <= 3; n++ {
		next(uint64(n), sim.PeerSignal(id, n))
	}

	// Ours reaches the peer byte for byte; the peer echoes it.
	ours := []byte{0, 1, 2, 0xff, 0xfe, '\n', '"', 'x'}
	if err := cl.SendSignaling(ctx, id, ours); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.SignalingReceived(id); len(got) != 1 || !bytes.Equal(got[0], ours) {
		t.Fatalf("the peer received %q, want %q", got, ours)
	}
	next(4, append([]byte(sim.EchoPrefix), ours...))

	// A gap makes calld fetch the difference, which repeats every
	// signaling update of this second (pts-less updates are selected by
	// date): none is kept twice.
	// The difference is computed when the request arrives; the echo of
	// the next payload is pushed after it, so it comes after whatever the
	// difference dispatches (the engine holds pushes behind it).
	diffs := e.srv.Count("updates.getDifference")
	e.srv.OpenGap(1)
	e.srv.SendMessage(bob, "after the gap")
	if err := e.srv.WaitCount(ctx, "updates.getDifference", diffs+1); err != nil {
		t.Fatalf("no getDifference after a gap: %v", err)
	}
	second := []byte("second payload")
	if err := cl.SendSignaling(ctx, id, second); err != nil {
		t.Fatal(err)
	}
	next(5, append([]byte(sim.EchoPrefix), second...))

	// The CLI lists what is kept.
	out, errOut, code := e.cli("signaling", fmt.Sprint(id))
	if code != 0 || strings.Count(out, "\n") != 5 || !strings.HasPrefix(out, "1 "+base64.StdEncoding.EncodeToString(sim.PeerSignal(id, 1))) {
		t.Fatalf("calld signaling: %d %q %s", code, out, errOut)
	}
	// And the API's NDJSON replay (its lines validated against docs/openapi.yaml).
	if status, _ := e.http("GET", fmt.Sprintf("/v1/calls/%d/signaling?since=0&follow=0", id), ""); status != 200 {
		t.Fatalf("signaling replay: %d", status)
	}

	// The peer hangs up after 30 s on the server's clock: need_rating
	// (and need_debug, asked for); the stream ends with the call.
	e.srv.SetNeedDebug(true)
	simNow.Add(30)
	if err := e.srv.PeerHangup(id, &tg.PhoneCallDiscardReasonHangup{}); err != nil {
		t.Fatal(err)
	}
	ended := e.waitCall(id, calld.StateEnded)
	if !ended.NeedRating || !ended.NeedDebug {
		t.Fatalf("ended call: %+v", ended)
	}
	select {
	case err := <-streamDone:
		if err != nil {
			t.Fatalf("signaling stream: %v", err)
		}
	case p := <-payloads:
		t.Fatalf("unexpected payload %d %q", p.Seq, p.Data)
	case <-ctx.Done():
		t.Fatal("the signaling stream did not end with the call")
	}
	if status, body := e.http("GET", fmt.Sprintf("/v1/calls/%d/signaling", id), ""); status != 409 || errCode(body) != "conflict" {
		t.Fatalf("signaling of an ended call: %d %v", status, body)
	}

	// Rating: once (the CLI), a second answers 409.
	if out, errOut, code := e.cli("rate", fmt.Sprint(id), "4", "--comment", "clear audio"); code != 0 {
		t.Fatalf("calld rate: %d %q %s", code, out, errOut)
	}
	if info, _ := e.srv.Call(id); info.Rating != 4 {
		t.Fatalf("the sim's rating: %d", info.Rating)
	}
	if comment, _ := e.srv.CallFeedback(id); comment != "clear audio" {
		t.Fatalf("the sim's comment: %q", comment)
	}
	if status, body := e.http("POST", fmt.Sprintf("/v1/calls/%d/rating", id), `{"rating":5}`); status != 409 || errCode(body) != "conflict" {
		t.Fatalf("second rating: %d %v", status, body)
	}
	// Debug log: once.
	debugLog := `{"network":{"rtt":12}}`
	if status, body := e.http("POST", fmt.Sprintf("/v1/calls/%d/debug", id), debugLog); status != 200 {
		t.Fatalf("debug: %d %v", status, body)
	}
	if _, dbg := e.srv.CallFeedback(id); dbg != debugLog {
		t.Fatalf("the sim's debug log: %q", dbg)
	}
	if status, body := e.http("POST", fmt.Sprintf("/v1/calls/%d/debug", id), debugLog); status != 409 || errCode(body) != "conflict" {
		t.Fatalf("second debug: %d %v", status, body)
	}

	// Stopped, every log line is in.
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("calld exited %d", code)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, "signaling data dropped: a repeat") {
		t.Fatalf("the difference repeated no signaling update: the test did not test the dedupe\n%s", logs)
	}
	// No log line holds a payload or the key, in any usual encoding.
	if !strings.Contains(logs, `"event":"call.signaling"`) {
		t.Fatalf("no call.signaling debug line: is the log level debug?\n%s", logs)
	}
	secrets := append(e.srv.SignalingSent(id), e.srv.SignalingReceived(id)...)
	secrets = append(secrets, media.Key)
	for _, s := range secrets {
		quoted, _ := json.Marshal(string(s))
		printable := s
		if i := bytes.IndexFunc(s, func(r rune) bool { return r < ' ' || r > '~' }); i >= 0 {
			printable = s[:i] // the text before the first binary byte
		}
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s),
			base64.URLEncoding.EncodeToString(s), hex.EncodeToString(s), string(s), fmt.Sprintf("%q", s),
			string(quoted[1 : len(quoted)-1]), string(printable),
		} {
			if len(enc) >= 8 && strings.Contains(logs, enc) {
				t.Fatalf("a log line holds a secret (%q)", enc)
			}
		}
	}
}
