// Command mediaengine shows a media engine's loop against calld (CONTRACT
// §5.5), with calld's Go control client: place a call (or attach to one),
// wait until it is active, read its media parameters, relay the engine's
// signaling both ways while the call lasts, and answer the rating and
// debug log Telegram asks for once it has ended.
//
// The engine here is a stand-in that sends two set-up payloads of its own
// once the call is active and counts the peer's; a real one (tgcalls, ntgcalls) takes the key,
// the relays and the protocol from /media and the payloads from the
// relay, and hands its outgoing payloads to SendSignaling.
//
//	calld serve --sim &     # prints its socket: CALLD_SOCKET=…/calld-sim-NNN/calld.sock
//	CALLD_SOCKET=…/calld-sim-NNN/calld.sock go run ./examples/mediaengine --peer @alice
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

func main() {
	socket := flag.String("socket", envOr("CALLD_SOCKET", "/run/calld.sock"), "calld's control socket")
	peer := flag.String("peer", "", "place a call to `PEER` (@username or user id)")
	callID := flag.Int64("call", 0, "attach to the call with this `ID` instead (accept it if it rings)")
	rating := flag.Int("rating", 5, "the rating (1..5) to give when the call asks for one")
	flag.Parse()
	if (*peer == "") == (*callID == 0) {
		log.Fatal("give --peer or --call")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cl := client.New(*socket)
	defer cl.Close()
	if err := run(ctx, cl, *peer, *callID, *rating); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, cl *client.Client, peer string, id int64, rating int) error {
	engine := &engine{}
	id, err := openCall(ctx, cl, engine, peer, id)
	if err != nil {
		return err
	}
	log.Printf("call %d", id)

	// 2. Wait for active (or an end) on the event stream.
	c, err := waitActive(ctx, cl, id)
	if err != nil {
		return err
	}
	if c.State == calld.StateActive {
		if c, err = relay(ctx, cl, engine, id); err != nil {
			return err
		}
	}
	if c.State.Live() {
		log.Printf("call %d is still %s: stopping", id, c.State)
		return nil
	}
	log.Printf("ended: %s, %d s", c.Reason, c.Duration)
	return answerEnded(ctx, cl, engine, c, rating)
}

// openCall is step 1: the call, placed with the protocol the engine
// speaks (the override is optional: [media] in calld.toml is the
// default), or the call id, accepted if it rings.
func openCall(ctx context.Context, cl *client.Client, engine *engine, peer string, id int64) (int64, error) {
	if peer != "" {
		c, err := cl.PlaceWith(ctx, calld.PlaceRequest{Peer: peer, Protocol: &calld.ProtocolOverride{
			LibraryVersions: engine.Versions(),
		}})
		if err != nil {
			return 0, fmt.Errorf("place: %w", err)
		}
		return c.ID, nil
	}
	if c, err := cl.Call(ctx, id); err == nil && c.State == calld.StateRinging && c.Direction == calld.DirectionIncoming {
		if _, err := cl.AcceptWith(ctx, id, calld.AcceptRequest{}); err != nil {
			return 0, fmt.Errorf("accept: %w", err)
		}
	}
	return id, nil
}

// relay runs the engine on an active call and returns the call once its
// signaling stream ended.
func relay(ctx context.Context, cl *client.Client, engine *engine, id int64) (calld.Call, error) {
	// 3. The media parameters: the key (never print it), the relays and
	// the protocol the server chose.
	media, err := cl.Media(ctx, id)
	if err != nil {
		return calld.Call{}, fmt.Errorf("media: %w", err)
	}
	if err := sendSignaling(ctx, cl, id, engine.Start(media)); err != nil {
		return calld.Call{}, err
	}
	log.Printf("active: %d relays, layers %d..%d, versions %v", len(media.Connections),
		media.Protocol.MinLayer, media.Protocol.MaxLayer, media.Protocol.LibraryVersions)

	// 4. Relay signaling until the call ends (the stream ends with it):
	// the peer's payloads to the engine, the engine's to the peer.
	err = cl.Signaling(ctx, id, 0, true, func(p calld.SignalingPayload) error {
		log.Printf("signaling in #%d (%d bytes)", p.Seq, len(p.Data))
		return sendSignaling(ctx, cl, id, engine.Receive(p.Data))
	})
	if err != nil {
		return calld.Call{}, fmt.Errorf("signaling: %w", err)
	}
	// A live call whose stream ended: calld restarted; a real engine
	// would read the relay again from since=0.
	return cl.Call(ctx, id)
}

// sendSignaling hands the engine's outgoing payloads to the peer.
func sendSignaling(ctx context.Context, cl *client.Client, id int64, outs [][]byte) error {
	for _, out := range outs {
		if err := cl.SendSignaling(ctx, id, out); err != nil {
			return fmt.Errorf("send signaling: %w", err)
		}
		log.Printf("signaling out (%d bytes)", len(out))
	}
	return nil
}

// answerEnded is step 5: what Telegram asks for once the call has ended.
func answerEnded(ctx context.Context, cl *client.Client, engine *engine, c calld.Call, rating int) error {
	if c.NeedRating {
		if _, err := cl.Rate(ctx, c.ID, rating, ""); err != nil {
			return fmt.Errorf("rate: %w", err)
		}
		log.Printf("rated %d", rating)
	}
	if c.NeedDebug {
		if _, err := cl.SaveDebug(ctx, c.ID, engine.DebugLog()); err != nil {
			return fmt.Errorf("debug: %w", err)
		}
		log.Print("debug log saved")
	}
	return nil
}

var errStop = errors.New("stop")

// waitActive follows the events until the call is active or has ended.
func waitActive(ctx context.Context, cl *client.Client, id int64) (calld.Call, error) {
	err := cl.Events(ctx, client.EventsOptions{Replay: true, Follow: true}, func(ev calld.Event) error {
		if ev.CallID == id && (ev.To == string(calld.StateActive) || ev.To == string(calld.StateEnded)) {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return calld.Call{}, fmt.Errorf("events: %w", err)
	}
	return cl.Call(ctx, id)
}

// engine stands in for tgcalls: it sends its set-up payloads when it
// starts and counts the peer's.
type engine struct {
	received, sent int
}

func (e *engine) Versions() []string { return []string{"11.0.0"} }

// Start takes the media parameters and returns the engine's first
// signaling payloads.
func (e *engine) Start(calld.Media) [][]byte {
	var out [][]byte
	for e.sent < 2 {
		e.sent++
		out = append(out, []byte("candidate "+strconv.Itoa(e.sent)))
	}
	return out
}

// Receive takes one payload of the peer's engine and returns the
// engine's answers (none here).
func (e *engine) Receive(data []byte) [][]byte {
	e.received++
	return nil
}

func (e *engine) DebugLog() json.RawMessage {
	b, _ := json.Marshal(map[string]int{"signaling_received": e.received, "signaling_sent": e.sent})
	return b
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
