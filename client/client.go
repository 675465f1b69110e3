// Package client is the Go client of calld's control API (CONTRACT §3,
// §5.5): HTTP/1.1 and JSON over the daemon's Unix socket, the NDJSON
// streams of events and signaling payloads read line by line.
//
// It links only the standard library and the root package calld, whose
// types (calld.Call, calld.Event, calld.Status, calld.Media, ...) it
// returns; API errors are *calld.Error values with the answer's code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/calld/calld"
)

// Client talks to the control API over its Unix socket. API errors are
// returned as *calld.Error with the code and message of the answer; a
// failure to connect says that the daemon is not running at the socket.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client for the daemon listening on socketPath.
func New(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		DisableCompression: true,
		MaxIdleConns:       2,
	}
	return &Client{socket: socketPath, http: &http.Client{Transport: tr}}
}

// Socket returns the socket path the client dials.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Raw performs one request and returns the body of a 2xx answer as it
// came (the API's JSON). body, if not nil, is sent as JSON.
func (c *Client) Raw(ctx context.Context, method, path string, body any) ([]byte, error) {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, apiError(resp.StatusCode, data)
	}
	return data, nil
}

func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://calld"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	return resp, nil
}

func (c *Client) dialError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("calld is not running at %s: %w", c.socket, err)
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return fmt.Errorf("no permission to connect to %s (is your user in the calld group?): %w", c.socket, err)
		}
		return fmt.Errorf("cannot connect to calld at %s: %w", c.socket, err)
	}
	return fmt.Errorf("control request to %s: %w", c.socket, err)
}

// apiError turns an error answer into a *calld.Error.
func apiError(status int, data []byte) error {
	var eb calld.ErrorBody
	if err := json.Unmarshal(data, &eb); err == nil && eb.Error.Code != "" {
		return &calld.Error{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	return calld.Errorf(calld.EINTERNAL, "unexpected HTTP %d answer: %s", status, text)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	data, err := c.Raw(ctx, method, path, in)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}

func callPath(id int64, suffix string) string {
	return "/v1/calls/" + strconv.FormatInt(id, 10) + suffix
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (calld.Status, error) {
	var st calld.Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Calls is GET /v1/calls (all: ?all=1).
func (c *Client) Calls(ctx context.Context, all bool) ([]calld.Call, error) {
	path := "/v1/calls"
	if all {
		path += "?all=1"
	}
	var body calld.CallsBody
	err := c.do(ctx, http.MethodGet, path, nil, &body)
	return body.Calls, err
}

// Call is GET /v1/calls/{id}.
func (c *Client) Call(ctx context.Context, id int64) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodGet, callPath(id, ""), nil, &call)
	return call, err
}

// Discard is POST /v1/calls/{id}/discard.
func (c *Client) Discard(ctx context.Context, id int64, reason calld.Reason) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/discard"), calld.DiscardRequest{Reason: reason}, &call)
	return call, err
}

// Place is POST /v1/calls.
func (c *Client) Place(ctx context.Context, peer string, video bool) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, "/v1/calls", calld.PlaceRequest{Peer: peer, Video: video}, &call)
	return call, err
}

// PlaceWith is POST /v1/calls with every field of the body (a protocol
// override among them).
func (c *Client) PlaceWith(ctx context.Context, req calld.PlaceRequest) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, "/v1/calls", req, &call)
	return call, err
}

// AcceptWith is POST /v1/calls/{id}/accept with a body (a protocol
// override).
func (c *Client) AcceptWith(ctx context.Context, id int64, req calld.AcceptRequest) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/accept"), req, &call)
	return call, err
}

// Accept is POST /v1/calls/{id}/accept.
func (c *Client) Accept(ctx context.Context, id int64) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/accept"), nil, &call)
	return call, err
}

// Media is GET /v1/calls/{id}/media.
func (c *Client) Media(ctx context.Context, id int64) (calld.Media, error) {
	var m calld.Media
	err := c.do(ctx, http.MethodGet, callPath(id, "/media"), nil, &m)
	return m, err
}

// SetConnection is POST /v1/calls/{id}/connection.
func (c *Client) SetConnection(ctx context.Context, id, connectionID int64) (calld.Call, error) {
	var call calld.Call
	err := c.do(ctx, http.MethodPost, callPath(id, "/connection"), calld.ConnectionRequest{ConnectionID: connectionID}, &call)
	return call, err
}

// Login is POST /v1/login.
func (c *Client) Login(ctx context.Context, step calld.LoginStep) (calld.LoginState, error) {
	var st calld.LoginState
	err := c.do(ctx, http.MethodPost, "/v1/login", step, &st)
	return st, err
}

// EventsOptions select what GET /v1/events streams.
type EventsOptions struct {
	// Replay asks for the journal's events with seq > Since first.
	Replay bool
	Since  uint64
	// Follow keeps the stream open for live events; without it the server
	// replays (from Since, 0 by default) and ends the stream.
	Follow bool
}

func (o EventsOptions) path() string {
	q := url.Values{}
	if o.Replay {
		q.Set("since", strconv.FormatUint(o.Since, 10))
	}
	if !o.Follow {
		q.Set("follow", "0")
	}
	if len(q) == 0 {
		return "/v1/events"
	}
	return "/v1/events?" + q.Encode()
}

// EventLines streams GET /v1/events and calls fn with each event line as
// sent (without the newline). It returns nil when the server ends the
// stream, fn's error, ctx's error, or — for the final error line of a
// dropped stream — a *calld.Error (code calld.CodeSlowReader).
func (c *Client) EventLines(ctx context.Context, opts EventsOptions, fn func(line []byte) error) error {
	return c.lines(ctx, opts.path(), "event stream", maxEventLine, fn)
}

// Events is EventLines with decoded events.
func (c *Client) Events(ctx context.Context, opts EventsOptions, fn func(calld.Event) error) error {
	return c.EventLines(ctx, opts, func(line []byte) error {
		var ev calld.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("decoding event %q: %w", line, err)
		}
		return fn(ev)
	})
}

// Health is GET /v1/health. A degraded daemon (HTTP 503 with a health
// body) is a Health whose Status is calld.HealthDegraded, not an error;
// an error means the daemon did not answer with a health.
func (c *Client) Health(ctx context.Context) (calld.Health, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/health", nil)
	if err != nil {
		return calld.Health{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return calld.Health{}, fmt.Errorf("reading the answer to GET /v1/health: %w", err)
	}
	var h calld.Health
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return h, apiError(resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, &h); err != nil || h.Status == "" {
		return h, apiError(resp.StatusCode, data)
	}
	return h, nil
}
