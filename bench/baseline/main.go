// Command baseline is the program a Go developer would write instead of
// calld to refuse every incoming call, from gotd v0.93.0's examples: a
// stock telegram.Client with its session in a file, gotd's
// telegram/updates manager in front of a tg.UpdateDispatcher (and, as in
// gotd's examples, fed the RPC results by updhook.UpdateHook), and an
// OnPhoneCall handler that discards every phoneCallRequested with busy.
// bench/ab runs it beside `calld serve` against the same simulator
// (docs/performance.md). It logs nothing per call; it prints "ready" once
// the updates manager has its state.
//
// The discard runs in a new goroutine: called inside the handler it
// deadlocks gotd's manager under a burst (docs/performance.md).
package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/telegram/updates"
	updhook "github.com/gotd/td/telegram/updates/hook"
	"github.com/gotd/td/tg"
)

var inline bool

func main() {
	addr := flag.String("addr", os.Getenv("BASELINE_ADDR"), "the server's host:port (a [[telegram.dc_options]] addr)")
	dc := flag.Int("dc", 2, "the server's DC id")
	keys := flag.String("public-keys", os.Getenv("BASELINE_PUBLIC_KEYS"), "PEM file with the server's RSA key")
	sess := flag.String("session", "baseline.session", "session file")
	flag.BoolVar(&inline, "inline", false, "discard inside the handler (deadlocks under a burst)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *dc, *keys, *sess); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, dc int, keysFile, sessionFile string) error {
	key, err := readKey(keysFile)
	if err != nil {
		return err
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return err
	}
	d := tg.NewUpdateDispatcher()
	gaps := updates.New(updates.Config{Handler: d})
	client := telegram.NewClient(1, "baseline", telegram.Options{
		DC:             dc,
		DCList:         dcs.List{Options: []tg.DCOption{{ID: dc, IPAddress: host, Port: port, Static: true}}},
		PublicKeys:     []telegram.PublicKey{{RSA: key}},
		Resolver:       dcs.Plain(dcs.PlainOptions{}),
		SessionStorage: &session.FileStorage{Path: sessionFile},
		UpdateHandler:  gaps,
		Middlewares:    []telegram.Middleware{updhook.UpdateHook(gaps.Handle)},
	})
	d.OnPhoneCall(func(_ context.Context, _ tg.Entities, u *tg.UpdatePhoneCall) error {
		call, ok := u.PhoneCall.(*tg.PhoneCallRequested)
		if !ok {
			return nil
		}
		discard := func() {
			_, _ = client.API().PhoneDiscardCall(ctx, &tg.PhoneDiscardCallRequest{
				Peer:   tg.InputPhoneCall{ID: call.ID, AccessHash: call.AccessHash},
				Reason: &tg.PhoneCallDiscardReasonBusy{},
			})
		}
		if inline {
			discard() // -inline: the deadlock docs/performance.md describes
		} else {
			go discard()
		}
		return nil
	})
	return client.Run(ctx, func(ctx context.Context) error {
		self, err := client.Self(ctx)
		if err != nil {
			return err
		}
		return gaps.Run(ctx, client.API(), self.ID, updates.AuthOptions{
			OnStart: func(context.Context) { fmt.Println("ready") },
		})
	})
}

func readKey(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return x509.ParsePKCS1PublicKey(block.Bytes)
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("-addr: %w", err)
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}
