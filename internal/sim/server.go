package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"

	"github.com/calld/calld/internal/group"
)

// Defaults of Options.
const (
	DefaultDC             = 2
	DefaultReceiveTimeout = 20 * time.Second
	DefaultRingTimeout    = 90 * time.Second
	// LoginCode is the code auth.signIn accepts.
	LoginCode = "12345"
	// SelfPhone is the phone number of the simulated account.
	SelfPhone = "15550000001"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// DC is the id of the simulated datacenter (default 2).
	DC int
	// Key is the server's RSA key (2048 bits). Nil: one key generated once
	// per process and shared by every Server without its own key.
	Key *rsa.PrivateKey
	// Now is the server clock; dates, durations and getDifference use it.
	// Default time.Now.
	Now func() time.Time
	// ReceiveTimeout and RingTimeout are advertised by help.getConfig as
	// call_receive_timeout_ms and call_ring_timeout_ms (defaults 20 s, 90 s).
	ReceiveTimeout, RingTimeout time.Duration
	// Authorized: every auth key is logged in, as the default account
	// until it signs in as another (accounts.go). When false,
	// a key must go through auth.sendCode/auth.signIn (code LoginCode, then
	// auth.checkPassword if Password is set) before account-bound methods
	// answer anything but AUTH_KEY_UNREGISTERED (401).
	Authorized bool
	// Password is the account's 2FA password ("" = none).
	Password string
	// Logger receives tgtest's and the sim's logs (default: none).
	Logger *zap.Logger
	// SignalingPayloads is how many signaling payloads the peer's media
	// engine sends once a call is active (media.go); 0: none.
	SignalingPayloads int
}

// Server is a simulated Telegram datacenter serving one account (the
// default) or more (AddAccount).
type Server struct {
	opts  Options
	key   *rsa.PrivateKey
	srv   *tgtest.Server
	log   *zap.Logger
	types map[uint32]string

	lifeMu  sync.Mutex
	ln      *trackingListener
	addr    string
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	serveEr error
	tasks   group.Group // every goroutine of the server: Close waits for them

	mu     sync.Mutex
	state  state
	dhPool []dhSecret // PrepareCalls (dhpool.go)
}

var (
	defaultKeyOnce sync.Once
	defaultKey     *rsa.PrivateKey
	defaultKeyErr  error
)

// DefaultKey returns the process-wide RSA key used when Options.Key is nil.
func DefaultKey() (*rsa.PrivateKey, error) {
	defaultKeyOnce.Do(func() {
		defaultKey, defaultKeyErr = rsa.GenerateKey(rand.Reader, 2048)
		if defaultKeyErr != nil {
			defaultKeyErr = fmt.Errorf("sim: generate RSA key: %w", defaultKeyErr)
		}
	})
	return defaultKey, defaultKeyErr
}

// New creates a Server; call Listen to serve it.
func New(opts Options) (*Server, error) {
	if opts.DC == 0 {
		opts.DC = DefaultDC
	}
	if opts.DC < 0 {
		return nil, fmt.Errorf("sim: invalid DC %d", opts.DC)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReceiveTimeout <= 0 {
		opts.ReceiveTimeout = DefaultReceiveTimeout
	}
	if opts.RingTimeout <= 0 {
		opts.RingTimeout = DefaultRingTimeout
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	key := opts.Key
	if key == nil {
		var err error
		if key, err = DefaultKey(); err != nil {
			return nil, err
		}
	}
	if key.N.BitLen() != 2048 {
		return nil, fmt.Errorf("sim: RSA key has %d bits, MTProto needs 2048", key.N.BitLen())
	}
	s := &Server{
		opts:  opts,
		key:   key,
		log:   opts.Logger.Named("sim"),
		types: tg.TypesMap(),
	}
	s.state.init()
	s.newAccountLocked(SelfID, SelfPhone, "sim_self", "Sim")
	s.srv = tgtest.NewServer(tgtest.NewPrivateKey(key), tgtest.HandlerFunc(s.onMessage), tgtest.ServerOptions{
		DC:           opts.DC,
		Logger:       opts.Logger.Named("tgtest"),
		ReadTimeout:  5 * time.Minute, // gotd pings every minute
		WriteTimeout: 10 * time.Second,
	})
	return s, nil
}

// Listen binds addr (for example "127.0.0.1:0") and serves in the
// background until ctx is done or Close is called.
func (s *Server) Listen(ctx context.Context, addr string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.ln != nil {
		return errors.New("sim: already listening")
	}
	var lc net.ListenConfig
	nl, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("sim: listen %s: %w", addr, err)
	}
	s.ln = newTrackingListener(nl)
	s.addr = nl.Addr().String()
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	sctx, ln, done := s.ctx, s.ln, s.done
	s.tasks.Go(func() error {
		// tgtest does not close accepted connections when ctx ends.
		<-sctx.Done()
		ln.shutdown()
		return nil
	})
	s.tasks.Go(func() error {
		defer close(done)
		err := s.srv.Serve(sctx, transport.Listen(ln))
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("serve stopped", zap.Error(err))
			s.lifeMu.Lock()
			s.serveEr = err
			s.lifeMu.Unlock()
		}
		return nil
	})
	return nil
}

// Close stops serving, closes every connection and waits for every
// goroutine of the server.
func (s *Server) Close() error {
	s.lifeMu.Lock()
	cancel, done, ln := s.cancel, s.done, s.ln
	s.lifeMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	_ = ln.Close()
	ln.shutdown()
	<-done
	ln.tasks.Wait(context.Background())
	s.tasks.Wait(context.Background())
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.serveEr
}

// Done is closed when serving has stopped (Listen's ctx ended or Close);
// nil before Listen.
func (s *Server) Done() <-chan struct{} {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.done
}

// Addr is the listening address ("127.0.0.1:port"), empty before Listen.
func (s *Server) Addr() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.addr
}

// DC is the datacenter id.
func (s *Server) DC() int { return s.opts.DC }

// PublicKey is the server's RSA public key.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// PublicKeyPEM is the public key as a PEM "RSA PUBLIC KEY" (PKCS#1) block,
// the form Telegram publishes its keys in.
func (s *Server) PublicKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{
		Type:  "RSA PUBLIC KEY",
		Bytes: x509.MarshalPKCS1PublicKey(&s.key.PublicKey),
	})
}

// ClientOptions returns gotd client options pointing at this server: DC,
// DCList, PublicKeys and a plain TCP resolver. Callers add their own
// SessionStorage, UpdateHandler and Logger.
func (s *Server) ClientOptions() telegram.Options {
	return telegram.Options{
		DC:         s.opts.DC,
		DCList:     s.DCList(),
		PublicKeys: []telegram.PublicKey{{RSA: s.PublicKey()}},
		Resolver:   dcs.Plain(dcs.PlainOptions{}),
	}
}

// DCList is the dcs.List with this server as the only DC.
func (s *Server) DCList() dcs.List {
	return dcs.List{Options: []tg.DCOption{s.dcOption()}}
}

func (s *Server) dcOption() tg.DCOption {
	host, portStr, _ := net.SplitHostPort(s.Addr())
	port, _ := strconv.Atoi(portStr)
	return tg.DCOption{
		Static:    true,
		ID:        s.opts.DC,
		IPAddress: host,
		Port:      port,
	}
}

// Cut closes every client TCP connection now; clients reconnect with new
// MTProto sessions (their auth keys stay valid).
func (s *Server) Cut() {
	s.lifeMu.Lock()
	ln := s.ln
	s.lifeMu.Unlock()
	if ln != nil {
		ln.closeConns()
	}
}

// Conns is the number of currently open client TCP connections.
func (s *Server) Conns() int {
	s.lifeMu.Lock()
	ln := s.ln
	s.lifeMu.Unlock()
	if ln == nil {
		return 0
	}
	return ln.count()
}

func (s *Server) now() time.Time { return s.opts.Now() }

func (s *Server) serverCtx() context.Context {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// trackingListener remembers accepted connections so Cut can close them,
// and reads the transport tag before handing a connection to tgtest, so a
// probe that connects and says nothing (or closes) cannot fail tgtest's
// accept loop (which stops the whole server on any Accept error).
type trackingListener struct {
	net.Listener
	accepted chan net.Conn
	closed   chan struct{}
	once     sync.Once

	tasks group.Group // the accept loop and the connections being prepared

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	pending map[net.Conn]struct{} // accepted, transport tag not read yet
	down    bool                  // shut down: new connections are closed at once
}

func newTrackingListener(l net.Listener) *trackingListener {
	t := &trackingListener{
		Listener: l,
		accepted: make(chan net.Conn),
		closed:   make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
		pending:  map[net.Conn]struct{}{},
	}
	t.tasks.Go(func() error { t.acceptLoop(); return nil })
	return t
}

func (t *trackingListener) acceptLoop() {
	for {
		c, err := t.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if !t.tasks.Go(func() error { t.prepare(c); return nil }) {
			_ = c.Close()
		}
	}
}

// prepare waits for the first bytes of the transport tag (abridged: 1 byte,
// others: 4) and replays them to tgtest.
func (t *trackingListener) prepare(c net.Conn) {
	// Closed by shutdown while it waits for the tag.
	t.mu.Lock()
	if t.down {
		t.mu.Unlock()
		_ = c.Close()
		return
	}
	t.pending[c] = struct{}{}
	t.mu.Unlock()
	head, err := readTag(c)
	t.mu.Lock()
	delete(t.pending, c)
	t.mu.Unlock()
	if err != nil {
		_ = c.Close()
		return
	}
	pc := &trackedConn{Conn: c, head: head, l: t}
	t.mu.Lock()
	if t.down {
		t.mu.Unlock()
		_ = c.Close()
		return
	}
	t.conns[pc] = struct{}{}
	t.mu.Unlock()
	select {
	case t.accepted <- pc:
	case <-t.closed:
		_ = pc.Close()
	}
}

// readTag reads the first bytes of the transport tag (abridged: 1 byte,
// others: 4) within 30 s.
func readTag(c net.Conn) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	head := make([]byte, 4)
	if _, err := io.ReadFull(c, head[:1]); err != nil {
		return nil, err
	}
	n := 1
	if head[0] != 0xef {
		if _, err := io.ReadFull(c, head[1:4]); err != nil {
			return nil, err
		}
		n = 4
	}
	_ = c.SetReadDeadline(time.Time{})
	return head[:n], nil
}

func (t *trackingListener) Accept() (net.Conn, error) {
	select {
	case c := <-t.accepted:
		return c, nil
	case <-t.closed:
		return nil, net.ErrClosed
	}
}

func (t *trackingListener) Close() error {
	var err error
	t.once.Do(func() {
		close(t.closed)
		err = t.Listener.Close()
	})
	return err
}

// shutdown closes every connection and refuses new ones.
func (t *trackingListener) shutdown() {
	t.mu.Lock()
	t.down = true
	t.mu.Unlock()
	t.closeConns()
}

func (t *trackingListener) closeConns() {
	t.mu.Lock()
	conns := make([]net.Conn, 0, len(t.conns)+len(t.pending))
	for c := range t.conns {
		conns = append(conns, c)
	}
	for c := range t.pending {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (t *trackingListener) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

type trackedConn struct {
	net.Conn
	head []byte
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(b, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// rpcError builds a Telegram RPC error.
func rpcError(code int, typ string) *tgerr.Error { return tgerr.New(code, typ) }

// CalldTelegramConfig is the [telegram] section of a calld config that
// points at this server (api_id, api_hash apiHash, its DC as the only
// dc_options entry), with its public key read from keysFile (write
// PublicKeyPEM there). With Options.Authorized, api_id = an account's
// SelfID makes the daemon that account without a login.
func (s *Server) CalldTelegramConfig(apiID int64, apiHash, keysFile string) string {
	return fmt.Sprintf(`[telegram]
api_id = %d
api_hash = %q
dc = %d
public_keys = %q
[[telegram.dc_options]]
id = %d
addr = %q
`, apiID, apiHash, s.DC(), keysFile, s.DC(), s.Addr())
}
