package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gotd/td/clock"
	"github.com/rs/zerolog"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
)

// Defaults of Options.
const (
	DefaultBodyLimit         = 1 << 20 // 1 MiB
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultWriteTimeout      = 30 * time.Second
	DefaultBodyTimeout       = 10 * time.Second
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Log receives one "control.request" line per request (debug for
	// reads, info for mutating routes, warn when forbidden).
	Log zerolog.Logger
	// AllowUIDs are uids allowed on mutating and secret routes besides
	// root and DaemonUID (config control.allow_uids).
	AllowUIDs []int
	// DaemonUID is the daemon's own uid; 0 means os.Getuid().
	DaemonUID int
	// BodyLimit caps request bodies; 0 means DefaultBodyLimit.
	BodyLimit int64
	// ReadHeaderTimeout; 0 means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body (a client trickling
	// it is cut off), not the handling; 0 means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// MaxHeaderBytes; 0 means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// WriteTimeout bounds each write of a response (each line of an event
	// stream), not the whole request: a Discard may legitimately take a
	// minute of retries. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Cred returns the peer credentials of a new connection; nil means
	// PeerCred (SO_PEERCRED). Tests inject other uids through it.
	Cred func(net.Conn) (Cred, error)
	// MaxConnections caps the connections served at once (event streams
	// included); Reserved(MaxConnections) of them only root and DaemonUID
	// may use. Past a cap a connection is answered 503 "unavailable" and
	// closed. 0 means DefaultMaxConnections.
	MaxConnections int
	// MaxConnectionsPerUID caps the connections of one peer uid other
	// than root and DaemonUID; 0 means DefaultMaxConnectionsPerUID.
	MaxConnectionsPerUID int
	// IdleTimeout closes a keep-alive connection idle between requests;
	// 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Clock times requests (their logged duration), the accept backoff
	// and the refusal log's rate; nil means clock.System. The sockets'
	// read and write deadlines are wall time whatever Clock is: the
	// runtime's poller compares them with the system's clock.
	Clock clock.Clock
	// Metrics, when set, serves GET /metrics (a read route: the
	// Prometheus exposition of the daemon's registry).
	Metrics http.Handler
}

// Server serves the control API. Create it with NewServer.
type Server struct {
	svc     calld.CallService
	hub     *Hub
	opts    Options
	log     zerolog.Logger
	allowed map[int]bool
	mux     *http.ServeMux
	table   map[string]bool // registered pattern → secret (docs/openapi.yaml is tested against it)
	handler http.Handler
	http    *http.Server

	done     chan struct{}
	doneOnce sync.Once
}

// NewServer returns a server for svc whose event streams follow hub.
func NewServer(svc calld.CallService, hub *Hub, opts Options) *Server {
	if opts.DaemonUID == 0 {
		opts.DaemonUID = os.Getuid()
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Cred == nil {
		opts.Cred = PeerCred
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxConnectionsPerUID <= 0 {
		opts.MaxConnectionsPerUID = DefaultMaxConnectionsPerUID
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.System
	}
	if hub == nil {
		hub = NewHub(0)
	}
	s := &Server{
		svc:     svc,
		hub:     hub,
		opts:    opts,
		log:     opts.Log,
		allowed: map[int]bool{0: true, opts.DaemonUID: true},
		mux:     http.NewServeMux(),
		done:    make(chan struct{}),
	}
	for _, uid := range opts.AllowUIDs {
		s.allowed[uid] = true
	}
	s.routes()
	s.handler = http.HandlerFunc(s.serveHTTP)
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ConnContext:       s.connContext,
		ErrorLog:          log.New(logWriter{s.log}, "", 0),
	}
	return s
}

// Handler returns the API's handler. Requests that did not come through
// Serve carry no peer credentials and are forbidden on mutating and
// secret routes.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on l until Shutdown; it closes l. It returns
// nil after Shutdown, otherwise the listener's error. Connections past
// the caps of Options are answered 503 and closed; accept errors from a
// lack of descriptors are waited out.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(s.limitListener(l))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: serving %s: %w", l.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections, ends event streams, and waits for
// in-flight requests to finish or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.doneOnce.Do(func() { close(s.done) })
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("control: shutdown: %w", err)
	}
	return nil
}

// route is a registered handler. secret routes (mutating ones and
// /media) require an allowed peer uid.
type route struct {
	s      *Server
	secret bool
	fn     func(w http.ResponseWriter, r *http.Request) error
}

func (s *Server) handle(pattern string, secret bool, fn func(http.ResponseWriter, *http.Request) error) {
	s.mux.Handle(pattern, &route{s: s, secret: secret, fn: fn})
	if s.table == nil {
		s.table = map[string]bool{}
	}
	s.table[pattern] = secret
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := rt.s
	if rt.secret {
		if err := s.authorize(r); err != nil {
			s.writeError(w, err)
			return
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = s.readBody(w, r)
	}
	if err := rt.fn(w, r); err != nil {
		s.writeError(w, err)
	}
}

// readBody reads the whole body, capped at BodyLimit, within BodyTimeout,
// and returns it as the request's new body (or a body that fails with the
// read's error, which decodeBody reports). The read deadline is cleared
// afterwards: the handling (a discard may retry for a minute) is not
// bounded by it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.opts.BodyTimeout))
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.BodyLimit))
	var tooLarge *http.MaxBytesError
	if err != nil && !errors.As(err, &tooLarge) {
		// A stalled body: close the connection after the answer
		// instead of draining the rest (the expired deadline stays).
		w.Header().Set("Connection", "close")
		return io.NopCloser(errReader{err})
	}
	// (net/http closes a connection whose body was too large itself.)
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		return io.NopCloser(errReader{err})
	}
	return io.NopCloser(bytes.NewReader(data))
}

// errReader is a body whose read failed.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// serveHTTP is the outer handler: it dispatches to the mux, turns the
// mux's own plain-text answers (404, 405, redirects) into JSON errors,
// recovers from panics and logs the request.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Clock.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error().Str(logging.FieldEvent, logging.EventControlPanic).Str(logging.FieldMethod, r.Method).
				Str(logging.FieldPath, r.URL.Path).Str(logging.FieldStack, string(debug.Stack())).
				Msgf("control: handler panic: %v", v)
			if sw.status == 0 {
				s.writeError(sw, calld.Errorf(calld.EINTERNAL, "internal error: %v", v))
			}
		}
		s.logRequest(r, sw.status, s.opts.Clock.Now().Sub(start))
	}()

	h, _ := s.mux.Handler(r)
	if _, ok := h.(*route); ok {
		s.mux.ServeHTTP(sw, r)
		return
	}
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.code {
	case http.StatusMethodNotAllowed:
		allow := rec.header.Get("Allow")
		sw.Header().Set("Allow", allow)
		s.writeError(sw, &statusError{
			status: http.StatusMethodNotAllowed,
			code:   calld.EINVALID,
			msg:    fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow),
		})
	default:
		msg := fmt.Sprintf("no such route: %s %s", r.Method, r.URL.Path)
		if loc := rec.header.Get("Location"); loc != "" && rec.code >= 300 && rec.code < 400 {
			msg += fmt.Sprintf(" (the canonical path is %s)", loc)
		}
		s.writeError(sw, calld.Errorf(calld.ENOTFOUND, "%s", msg))
	}
}

func (s *Server) logRequest(r *http.Request, status int, d time.Duration) {
	secret := r.Method != http.MethodGet && r.Method != http.MethodHead ||
		strings.HasSuffix(r.URL.Path, "/media")
	var e *zerolog.Event
	switch {
	case status == http.StatusForbidden:
		e = s.log.Warn()
	case secret:
		e = s.log.Info()
	default:
		e = s.log.Debug()
	}
	if e == nil {
		return
	}
	e = e.Str(logging.FieldEvent, logging.EventControlRequest).Str(logging.FieldMethod, r.Method).Str(logging.FieldPath, r.URL.Path).
		Int(logging.FieldStatus, status).Dur(logging.FieldDuration, d)
	if c, ok := CredFromContext(r.Context()); ok {
		e = e.Int(logging.FieldUID, c.UID).Int(logging.FieldPID, c.PID)
	}
	e.Msg("control request")
}

// authorize allows root, the daemon's uid and AllowUIDs.
func (s *Server) authorize(r *http.Request) error {
	c, ok := CredFromContext(r.Context())
	if !ok {
		return calld.Errorf(calld.EFORBIDDEN, "peer credentials are unavailable on this connection; %s %s needs an allowed uid", r.Method, r.URL.Path)
	}
	if s.allowed[c.UID] {
		return nil
	}
	return calld.Errorf(calld.EFORBIDDEN, "uid %d may not use %s %s (allowed: root, the daemon's uid %d, control.allow_uids)", c.UID, r.Method, r.URL.Path, s.opts.DaemonUID)
}

func (s *Server) connContext(ctx context.Context, nc net.Conn) context.Context {
	c, ok := nc.(*conn)
	if !ok {
		return ctx
	}
	cred, err := c.cred, c.credErr
	if err != nil {
		s.log.Debug().Str(logging.FieldEvent, logging.EventControlPeercred).Err(err).Msg("no peer credentials")
		return ctx
	}
	return context.WithValue(ctx, credKey{}, cred)
}

// statusWriter remembers the status for logging and for the panic path.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// FlushError lets http.ResponseController flush through the wrapper.
func (w *statusWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recorder captures the mux's internal answers (404, 405, redirects).
type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// logWriter sends net/http's own error log lines to zerolog.
type logWriter struct{ log zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str(logging.FieldEvent, logging.EventControlHTTPError).Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = logWriter{}
