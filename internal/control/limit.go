package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/logging"
)

// Defaults of the connection limits (Options and config [control]).
const (
	// DefaultMaxConnections caps the connections served at once, event
	// streams included. A busy server's scripts and dashboards stay far
	// below it; each idle connection costs ~20 KB and one descriptor.
	DefaultMaxConnections = 1024
	// DefaultMaxConnectionsPerUID caps the connections of one peer uid
	// other than root and the daemon's.
	DefaultMaxConnectionsPerUID = 256
	// DefaultIdleTimeout closes a keep-alive connection idle that long
	// between requests.
	DefaultIdleTimeout = 30 * time.Second
)

// Reserved returns how many of n connections (control.max_connections)
// only root and the daemon's uid may use: an eighth, at least one (none
// when n is 1).
func Reserved(n int) int {
	if n <= 1 {
		return 0
	}
	return max(1, n/8)
}

// Accept back-off under descriptor exhaustion (EMFILE and the like).
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// refusalLogEvery spaces the control.refused lines of a flood.
	refusalLogEvery = 10 * time.Second
	// lingerSlots bounds the refused connections whose request is being
	// drained (so that the client reads the refusal instead of a reset);
	// past it a refused connection is closed at once.
	lingerSlots   = 32
	lingerTimeout = time.Second
	lingerBytes   = 64 << 10
)

// limitListener admits connections under the caps of Options, answers the
// others with a 503 and closes them, and backs off when accept fails for
// want of descriptors.
type limitListener struct {
	net.Listener
	s      *Server
	max    int // MaxConnections, fitted to the descriptor limit
	closed chan struct{}
	once   sync.Once

	mu     sync.Mutex
	total  int
	perUID map[int]int
	// refusal log rate limiting
	refused    int
	lastRefuse time.Time

	linger  chan struct{}
	lingers sync.WaitGroup
	// lingering are the refused connections being drained; Close ends
	// them. Guarded by mu.
	lingering map[net.Conn]struct{}
}

func (s *Server) limitListener(l net.Listener) *limitListener {
	n := s.opts.MaxConnections
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		n = fitFileLimit(n, rl.Cur)
	}
	if n < s.opts.MaxConnections {
		s.log.Warn().Str(logging.FieldEvent, logging.EventControlLimits).
			Msgf("control socket: RLIMIT_NOFILE is %d: serving at most %d connections instead of control.max_connections = %d (raise LimitNOFILE=)",
				rl.Cur, n, s.opts.MaxConnections)
	}
	return &limitListener{
		Listener:  l,
		s:         s,
		max:       n,
		closed:    make(chan struct{}),
		perUID:    map[int]int{},
		linger:    make(chan struct{}, lingerSlots),
		lingering: map[net.Conn]struct{}{},
	}
}

// fdMargin is the descriptors kept for the rest of the daemon (the
// store, Telegram connections, logs) when the file limit bounds the
// connection cap.
const fdMargin = 128

// fitFileLimit returns the connection cap n lowered so that it fits in the
// soft descriptor limit with fdMargin to spare (at least 2).
func fitFileLimit(n int, soft uint64) int {
	if soft >= uint64(n)+fdMargin {
		return n
	}
	if soft < fdMargin+2 {
		return 2
	}
	return min(n, int(soft-fdMargin))
}

// Close stops accepting, ends the refused connections still being
// drained and waits for their goroutines.
func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	err := l.Listener.Close()
	l.mu.Lock()
	for c := range l.lingering {
		c.Close()
	}
	l.mu.Unlock()
	l.lingers.Wait()
	return err
}

// Accept returns the next admitted connection. Connections past a cap are
// answered and closed here; errors from a lack of descriptors are retried
// with a growing back-off (logged once per episode), never returned.
func (l *limitListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	failures := 0
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !resourceError(err) {
				return nil, err
			}
			failures++
			if failures == 1 {
				l.s.log.Warn().Str(logging.FieldEvent, logging.EventControlAccept).Err(err).
					Msg("control socket: accept fails for want of descriptors; backing off")
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			t := l.s.opts.Clock.Timer(backoff)
			select {
			case <-t.C():
				continue
			case <-l.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
		}
		if failures > 0 {
			l.s.log.Info().Str(logging.FieldEvent, logging.EventControlAccept).Int(logging.FieldFailures, failures).
				Msg("control socket: accepting again")
			failures, backoff = 0, 0
		}
		cred, credErr := l.s.opts.Cred(c)
		uid := -1
		if credErr == nil {
			uid = cred.UID
		}
		if msg := l.admit(uid); msg != "" {
			l.refuse(c, uid, msg)
			continue
		}
		return &conn{Conn: c, cred: cred, credErr: credErr, release: func() { l.release(uid) }}, nil
	}
}

// resourceError reports whether an accept error is a lack of descriptors
// or memory, which passes once connections close.
func resourceError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// privileged uids may use the reserved share of the global cap and are
// not held to the per-uid cap.
func (l *limitListener) privileged(uid int) bool {
	return uid == 0 || uid == l.s.opts.DaemonUID
}

// admit counts a new connection of uid, or says why it is refused.
func (l *limitListener) admit(uid int) string {
	o := l.s.opts
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.max
	if !l.privileged(uid) {
		limit -= Reserved(l.max)
	}
	switch {
	case l.total >= limit:
		return fmt.Sprintf("too many connections to the control socket (%d open, control.max_connections = %d, of which %d are kept for root and the daemon's uid); close some and retry",
			l.total, l.max, Reserved(l.max))
	case !l.privileged(uid) && l.perUID[uid] >= o.MaxConnectionsPerUID:
		return fmt.Sprintf("too many connections to the control socket from uid %d (%d open, control.max_connections_per_uid = %d); close some and retry",
			uid, l.perUID[uid], o.MaxConnectionsPerUID)
	}
	l.total++
	l.perUID[uid]++
	return ""
}

func (l *limitListener) release(uid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perUID[uid]--; l.perUID[uid] <= 0 {
		delete(l.perUID, uid)
	}
}

// refuse answers c with a 503 "unavailable" JSON error and closes it.
// The answer fits in the empty socket buffer, so the write does not block;
// the request is then drained for a moment (if a slot is free) so that the
// client reads the answer rather than a reset.
func (l *limitListener) refuse(c net.Conn, uid int, msg string) {
	l.logRefusal(uid, msg)
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(errorResponse(http.StatusServiceUnavailable, calld.EUNAVAILABLE, msg))
	select {
	case l.linger <- struct{}{}:
	default:
		c.Close()
		return
	}
	l.mu.Lock()
	select {
	case <-l.closed: // Close is waiting for the lingering ones: no more
		l.mu.Unlock()
		<-l.linger
		c.Close()
		return
	default:
	}
	l.lingering[c] = struct{}{}
	l.lingers.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.lingers.Done()
		defer func() { <-l.linger }()
		defer func() {
			l.mu.Lock()
			delete(l.lingering, c)
			l.mu.Unlock()
			c.Close()
		}()
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
		buf := make([]byte, 4096)
		for n := 0; n < lingerBytes; {
			m, err := c.Read(buf)
			n += m
			if err != nil {
				return
			}
		}
	}()
}

// logRefusal logs the first refusal and then at most one line per
// refusalLogEvery, with the number refused meanwhile.
func (l *limitListener) logRefusal(uid int, msg string) {
	l.mu.Lock()
	l.refused++
	now := l.s.opts.Clock.Now()
	if !l.lastRefuse.IsZero() && now.Sub(l.lastRefuse) < refusalLogEvery {
		l.mu.Unlock()
		return
	}
	n := l.refused
	l.refused, l.lastRefuse = 0, now
	l.mu.Unlock()
	l.s.log.Warn().Str(logging.FieldEvent, logging.EventControlRefused).Int(logging.FieldUID, uid).Int(logging.FieldRefused, n).Msg(msg)
}

// errorResponse is a complete HTTP/1.1 response carrying the JSON error
// shape, that closes the connection.
func errorResponse(status int, code, msg string) []byte {
	body, _ := json.Marshal(calld.ErrorBody{Error: calld.ErrorDetail{Code: code, Message: msg}})
	body = append(body, '\n')
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
		status, http.StatusText(status), len(body))
	b.Write(body)
	return b.Bytes()
}

// conn is an admitted connection: it carries the peer credentials read at
// accept and gives its slot back when closed.
type conn struct {
	net.Conn
	cred    Cred
	credErr error
	release func()
	once    sync.Once
}

func (c *conn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection after an error reply.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Write passes the server's writes through, except net/http's own replies
// to a request it could not parse (malformed request line or header, bad
// version, header too large, unknown transfer encoding), which it writes
// straight to the connection as text/plain: those are rewritten into the
// API's JSON error shape with code "invalid", keeping their status.
func (c *conn) Write(p []byte) (int, error) {
	if r := jsonProtocolError(p); r != nil {
		if _, err := c.Conn.Write(r); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// goErrorHeaders is what net/http writes between the status line and the
// text of its own error replies (net/http's errorHeaders).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// jsonProtocolError returns the JSON version of p when p is one of
// net/http's own error replies, else nil.
func jsonProtocolError(p []byte) []byte {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(proto)) {
		return nil
	}
	i := bytes.Index(p, []byte(goErrorHeaders))
	if i < len(proto)+3 {
		return nil
	}
	statusLine := string(p[len(proto):i])
	status, err := strconv.Atoi(statusLine[:3])
	if err != nil || status < 400 || bytes.ContainsAny(p[:i], "\r\n") {
		return nil
	}
	detail := strings.TrimPrefix(string(p[i+len(goErrorHeaders):]), statusLine)
	detail = strings.TrimSpace(strings.TrimPrefix(detail, ":"))
	msg := fmt.Sprintf("malformed HTTP request (%s)", statusLine)
	if detail != "" {
		msg += ": " + detail
	}
	return errorResponse(status, calld.EINVALID, msg)
}
