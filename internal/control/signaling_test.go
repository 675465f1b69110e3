package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
)

// mediaService adds a MediaService with three kept payloads to memService.
type mediaService struct {
	*memService
	mu       sync.Mutex
	follows  bool // Signaling with follow waits for ctx after the replay
	sent     [][]byte
	ratings  []calld.RatingRequest
	debugLog []json.RawMessage
}

var _ calld.MediaService = (*mediaService)(nil)

func (s *mediaService) Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(calld.SignalingPayload) error) error {
	if id != idActive {
		return calld.Errorf(calld.ECONFLICT, "call %d is not live", id)
	}
	for seq := since + 1; seq <= 3; seq++ {
		if err := fn(calld.SignalingPayload{Seq: seq, Data: []byte{0, byte(seq), 0xff}}); err != nil {
			return err
		}
	}
	if follow && s.follows {
		<-ctx.Done()
	}
	return nil
}

func (s *mediaService) SendSignaling(_ context.Context, _ int64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, data)
	return nil
}

func (s *mediaService) Rate(_ context.Context, id int64, rating int, comment string) (calld.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ratings = append(s.ratings, calld.RatingRequest{Rating: rating, Comment: comment})
	return calld.Call{ID: id, State: calld.StateEnded}, nil
}

func (s *mediaService) SaveDebug(_ context.Context, id int64, data json.RawMessage) (calld.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.debugLog = append(s.debugLog, data)
	return calld.Call{ID: id, State: calld.StateEnded}, nil
}

// startMedia serves svc (a *mediaService or a plain *memService).
func startMedia(t *testing.T, svc calld.CallService, opts Options) (*client.Client, func(method, path, body string) (int, http.Header, string)) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "c.sock")
	srv := NewServer(svc, nil, opts)
	l, err := Listen(socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	env := &testEnv{http: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}}
	cl := client.New(socket)
	t.Cleanup(func() {
		cl.Close()
		env.http.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return cl, func(method, path, body string) (int, http.Header, string) { return env.do(t, method, path, body) }
}

func TestMediaRoutes(t *testing.T) {
	svc := &mediaService{memService: newMemService(NewHub(0))}
	cl, do := startMedia(t, svc, Options{})
	ctx := context.Background()
	active := "/v1/calls/" + strconv.FormatInt(idActive, 10)

	// The replay, as NDJSON with base64 data.
	status, hdr, body := do("GET", active+"/signaling?since=1&follow=0", "")
	if status != 200 || hdr.Get("Content-Type") != "application/x-ndjson" ||
		body != "{\"seq\":2,\"data\":\"AAL/\"}\n{\"seq\":3,\"data\":\"AAP/\"}\n" {
		t.Fatalf("signaling: %d %s %q", status, hdr.Get("Content-Type"), body)
	}
	var got []calld.SignalingPayload
	if err := cl.Signaling(ctx, idActive, 0, true, func(p calld.SignalingPayload) error { got = append(got, p); return nil }); err != nil || len(got) != 3 || got[2].Data[1] != 3 {
		t.Fatalf("client signaling: %v %+v", err, got)
	}
	if err := cl.Signaling(ctx, idRinging, 0, true, func(calld.SignalingPayload) error { return nil }); calld.ErrorCode(err) != calld.ECONFLICT {
		t.Fatalf("signaling of a call that is not live: %v", err)
	}
	if err := cl.SendSignaling(ctx, idActive, []byte{0, '\n', 0xfe}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Rate(ctx, idActive, 4, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SaveDebug(ctx, idActive, json.RawMessage(`{"rtt":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	svc.mu.Lock()
	if len(svc.sent) != 1 || string(svc.sent[0]) != "\x00\n\xfe" || len(svc.ratings) != 1 || svc.ratings[0] != (calld.RatingRequest{Rating: 4, Comment: "ok"}) ||
		len(svc.debugLog) != 1 || string(svc.debugLog[0]) != `{"rtt":[1,2]}` {
		t.Fatalf("the service got %q %+v %q", svc.sent, svc.ratings, svc.debugLog)
	}
	svc.mu.Unlock()

	for _, tc := range []struct{ method, path, body, code string }{
		{"GET", active + "/signaling?since=x", "", calld.EINVALID},
		{"POST", active + "/signaling", `{}`, calld.EINVALID},
		{"POST", active + "/signaling", `{"data":"not base64!"}`, calld.EINVALID},
		{"POST", active + "/signaling", `{"data":"AA==","x":1}`, calld.EINVALID},
		{"POST", active + "/rating", `{"rating":0}`, calld.EINVALID},
		{"POST", active + "/rating", `{"rating":6}`, calld.EINVALID},
		{"POST", active + "/rating", ``, calld.EINVALID},
		{"POST", active + "/debug", `not json`, calld.EINVALID},
		{"POST", active + "/debug", ``, calld.EINVALID},
		{"POST", "/v1/calls/x/debug", `{}`, calld.EINVALID},
	} {
		status, hdr, body := do(tc.method, tc.path, tc.body)
		if status != 400 || !strings.Contains(body, `"`+tc.code+`"`) {
			t.Errorf("%s %s %s: %d %s %s", tc.method, tc.path, tc.body, status, hdr.Get("Content-Type"), body)
		}
	}
}

// The media routes carry secrets or act: a stranger is refused before
// the service sees anything; a service without a media side answers 404.
func TestMediaRoutesPermissions(t *testing.T) {
	svc := &mediaService{memService: newMemService(NewHub(0))}
	_, do := startMedia(t, svc, Options{DaemonUID: 4242, Cred: uidAs(t, 4343)})
	active := "/v1/calls/" + strconv.FormatInt(idActive, 10)
	for _, r := range []struct{ method, path, body string }{
		{"GET", active + "/signaling?follow=0", ""},
		{"POST", active + "/signaling", `{"data":"AA=="}`},
		{"POST", active + "/rating", `{"rating":5}`},
		{"POST", active + "/debug", `{}`},
	} {
		status, hdr, body := do(r.method, r.path, r.body)
		wantError(t, status, hdr, body, 403, calld.EFORBIDDEN)
	}
	if len(svc.sent)+len(svc.ratings)+len(svc.debugLog) != 0 {
		t.Fatal("a forbidden request reached the service")
	}
	_, plain := startMedia(t, newMemService(NewHub(0)), Options{})
	status, hdr, body := plain("POST", active+"/rating", `{"rating":5}`)
	wantError(t, status, hdr, body, 404, calld.ENOTFOUND)
}

// A body the media routes refuse says which field is wrong.
func TestMediaRoutesNameTheField(t *testing.T) {
	svc := &mediaService{memService: newMemService(NewHub(0))}
	_, do := startMedia(t, svc, Options{})
	active := "/v1/calls/" + strconv.FormatInt(idActive, 10)
	for _, tc := range []struct{ method, path, body, field string }{
		{"POST", active + "/signaling", `{"data":"not base64!"}`, `"message":"data `},
		{"POST", active + "/signaling", `{"data":"AA=A"}`, `"message":"data `},
		{"POST", active + "/signaling", `{"data":""}`, `"message":"data `},
		{"POST", active + "/signaling", `{"data":5}`, `field \"data\"`},
		{"POST", active + "/rating", `{"rating":"5"}`, `field \"rating\"`},
		{"POST", active + "/rating", `{"rating":9}`, `"message":"rating `},
		{"POST", active + "/rating", `{"rating":5,"comment":1}`, `field \"comment\"`},
		{"GET", active + "/signaling?since=-1", "", `"message":"since `},
		{"GET", active + "/signaling?since=abc", "", `"message":"since `},
		{"POST", "/v1/calls", `{"peer":"@x","protocol":{"min_layer":"x"}}`, `field \"protocol.min_layer\"`},
		{"POST", "/v1/calls", `{"peer":"@x","protocol":{"library_versions":"x"}}`, `field \"protocol.library_versions\"`},
	} {
		status, hdr, body := do(tc.method, tc.path, tc.body)
		if status != 400 || !strings.Contains(body, `"`+calld.EINVALID+`"`) || !strings.Contains(body, tc.field) {
			t.Errorf("%s %s %s: %d %s %s (want 400 naming %s)", tc.method, tc.path, tc.body, status, hdr.Get("Content-Type"), body, tc.field)
		}
	}
}

// HEAD on the signaling stream answers its header at once (as on
// /v1/events): it does not follow the call until it ends.
func TestSignalingHead(t *testing.T) {
	svc := &mediaService{memService: newMemService(NewHub(0)), follows: true}
	_, do := startMedia(t, svc, Options{})
	active := "/v1/calls/" + strconv.FormatInt(idActive, 10)
	answered := make(chan string, 1)
	go func() {
		status, hdr, body := do("HEAD", active+"/signaling", "")
		answered <- fmt.Sprintf("%d %s %q", status, hdr.Get("Content-Type"), body)
	}()
	select {
	case got := <-answered:
		if got != `200 application/x-ndjson ""` {
			t.Fatalf("HEAD: %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("HEAD on a live call's signaling follows it")
	}
	status, hdr, body := do("HEAD", "/v1/calls/"+strconv.FormatInt(idRinging, 10)+"/signaling", "")
	if status != 409 {
		t.Fatalf("HEAD on a call that is not live: %d %v %q", status, hdr, body)
	}
}
