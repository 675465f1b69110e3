package mtproto

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gotd/td/clock"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/telegram/updates/hook"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/transport"
	"github.com/rs/zerolog"

	"github.com/calld/calld/internal/logging"
	"go.uber.org/zap"

	"github.com/calld/calld/internal/metrics"
	"github.com/calld/calld/internal/mtproto/callkey"
	"github.com/calld/calld/internal/mtproto/middleware"
)

// DCOption is one server address of a data center.
type DCOption struct {
	ID   int
	Addr string // host:port
}

// UpdatesSink receives every Updates the account gets, on one path.
//
// Updates is called with own=false for pushed updates (possibly concurrently
// and out of order: gotd handles each incoming message on its own goroutine)
// and with own=true for the Updates result of an RPC made through
// Client.API, synchronously, before that RPC returns to its caller. An error
// from a pushed update is only logged; an error for an RPC result is
// returned by the RPC wrapped with middleware.ErrUpdatesSink.
//
// Connected is called after each successful (re)connection and session
// set-up, Disconnected when that connection is lost; see the package doc.
// They are called in order from one goroutine, and may make RPCs.
type UpdatesSink interface {
	Updates(ctx context.Context, u tg.UpdatesClass, own bool) error
	Connected(ctx context.Context)
	Disconnected(err error)
}

// Config of a Client. Zero values take the documented defaults.
type Config struct {
	APIID   int
	APIHash string
	// DC to connect to first; default 2.
	DC int
	// DCOptions, when non-empty, replace gotd's built-in production list and
	// stay authoritative: the DC list a server advertises in help.getConfig
	// is ignored for dialing.
	DCOptions []DCOption
	// PublicKeys of the servers (see ParsePublicKeys); empty means gotd's
	// built-in production keys.
	PublicKeys []*rsa.PublicKey
	// Session persists the auth key; nil keeps it in memory only.
	Session session.Storage
	// Log receives gotd's logs (component=mtproto) and the client's own.
	Log zerolog.Logger
	// LogLevel of gotd's logs: debug, info, warn or error; "" means warn.
	LogLevel string
	// Updates receives every Updates; nil drops them.
	Updates UpdatesSink
	// RetryBudget bounds the retry waits of one RPC; default 60 s.
	RetryBudget time.Duration
	// Clock drives the retry waits (only those: gotd keeps its own clock);
	// default clock.System.
	Clock clock.Clock
	// Random is the source of DH secrets and random ids; default crypto/rand.
	Random io.Reader
	// Device is sent in initConnection; zero uses gotd's defaults.
	Device telegram.DeviceConfig
	// Metrics counts the RPCs that failed (calld_rpc_errors_total); nil
	// counts nothing.
	Metrics *metrics.Metrics
	// Unauthorized, when set, hears of every RPC that ended with a 401
	// (middleware.Unauthorized): a session revoked or logged out while
	// the client runs. It must not block.
	Unauthorized func(method string, err error)
	// Gate, when set, holds back every RPC but a login's while it is
	// closed (middleware.Gate), and the pushed updates: they are dropped
	// before the updates sink.
	Gate *middleware.Gate
}

// Client is calld's MTProto client: a gotd telegram.Client with calld's
// middlewares, DC resolver and session hook. Run it once.
type Client struct {
	cfg    Config
	client *telegram.Client
	api    *tg.Client
	sink   UpdatesSink
	log    zerolog.Logger
	rand   io.Reader
	stop   chan struct{} // closed when Run returns

	dhMu sync.Mutex
	dh   *callkey.Params

	connMu       sync.Mutex
	dialGen      uint64 // generation of the latest dialed connection
	lostGen      uint64 // highest generation seen failing or closed
	connected    bool
	connectedGen uint64
	events       []connEvent
	conns        map[*watchedConn]struct{} // open connections, closed when Run's context ends
	closing      bool                      // Run's context ended: no new connection
	stopping     bool                      // Run's callback returned: gotd is closing its connections
	dialAddr     string                    // the address dialed last
	dialErr      error                     // why the last dial or connection failed; nil once connected
	up           chan struct{}             // closed when connected; replaced when lost
	eventSignal  chan struct{}
	runOnce      sync.Once
}

type connEvent struct {
	connected bool
	err       error
	stop      bool // a disconnection of Run's own stop, not a loss
}

// New checks cfg and builds the client; nothing is dialed before Run.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	list, err := dcList(cfg.DCOptions, cfg.DC)
	if err != nil {
		return nil, err
	}
	zl, err := newZapLogger(cfg.Log, cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("mtproto config: %w", err)
	}
	keys, err := publicKeys(cfg.PublicKeys)
	if err != nil {
		return nil, err
	}

	c := &Client{
		cfg:         cfg,
		sink:        cfg.Updates,
		log:         cfg.Log.With().Str(logging.FieldComponent, "mtproto").Logger(),
		rand:        cfg.Random,
		stop:        make(chan struct{}),
		eventSignal: make(chan struct{}, 1),
	}
	if c.sink == nil {
		c.sink = nopSink{}
	}
	c.client = telegram.NewClient(cfg.APIID, cfg.APIHash, c.options(list, keys, zl))
	c.api = c.client.API()
	return c, nil
}

// withDefaults checks cfg and fills in the documented defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.APIID <= 0 {
		return cfg, fmt.Errorf("mtproto config: api_id must be > 0, got %d", cfg.APIID)
	}
	if cfg.APIHash == "" {
		return cfg, errors.New("mtproto config: api_hash is empty")
	}
	if cfg.DC == 0 {
		cfg.DC = 2
	}
	if cfg.DC < 0 {
		return cfg, fmt.Errorf("mtproto config: dc must be > 0, got %d", cfg.DC)
	}
	if cfg.RetryBudget < 0 {
		return cfg, fmt.Errorf("mtproto config: retry budget must not be negative, got %s", cfg.RetryBudget)
	}
	if cfg.RetryBudget == 0 {
		cfg.RetryBudget = middleware.DefaultRetryBudget
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cfg.Session == nil {
		cfg.Session = new(session.StorageMemory)
	}
	return cfg, nil
}

// publicKeys converts the configured keys; none means gotd's built-in ones.
func publicKeys(rsaKeys []*rsa.PublicKey) ([]telegram.PublicKey, error) {
	var keys []telegram.PublicKey
	for i, k := range rsaKeys {
		if k == nil {
			return nil, fmt.Errorf("mtproto config: public key %d is nil", i)
		}
		keys = append(keys, telegram.PublicKey{RSA: k})
	}
	return keys, nil
}

// options are gotd's options for c: its resolver, session hook, updates
// handler and the middlewares, outermost first (see the package doc).
func (c *Client) options(list dcs.List, keys []telegram.PublicKey, zl *zap.Logger) telegram.Options {
	plain := dcs.Plain(dcs.PlainOptions{Dial: c.dial})
	var resolver dcs.Resolver = plain
	if len(c.cfg.DCOptions) > 0 {
		resolver = fixedResolver{list: list, next: plain}
	}
	return telegram.Options{
		PublicKeys:          keys,
		DC:                  c.cfg.DC,
		DCList:              list,
		Resolver:            resolver,
		Logger:              zl,
		SessionStorage:      sessionHook{Storage: c.cfg.Session, c: c},
		UpdateHandler:       telegram.UpdateHandlerFunc(c.handlePushed),
		Middlewares:         c.middlewares(),
		Random:              c.cfg.Random,
		Device:              c.cfg.Device,
		ReconnectionBackoff: reconnectBackoff,
	}
}

// middlewares are the client's middlewares, outermost first: the gate
// (when Config.Gate is set), the failures counted, the 401s reported (when Config.Unauthorized is set),
// errors typed, RPC results fed to the updates sink, retries.
func (c *Client) middlewares() []telegram.Middleware {
	var mw []telegram.Middleware
	if c.cfg.Gate != nil {
		mw = append(mw, c.cfg.Gate.Middleware())
	}
	mw = append(mw, middleware.CountErrors(c.cfg.Metrics.RPCError))
	if c.cfg.Unauthorized != nil {
		mw = append(mw, middleware.Unauthorized(c.cfg.Unauthorized))
	}
	return append(mw,
		telegram.MiddlewareFunc(middleware.TypedErrors),
		hook.UpdateHook(c.updatesHook),
		middleware.Retry{Budget: c.cfg.RetryBudget, Clock: c.cfg.Clock, Log: c.log, Stop: c.stop, Connected: c.waitConnected},
	)
}

// maxReconnectInterval caps the wait between reconnection attempts.
// gotd's default grows to 60 s (±50%) and is not reset by a connection
// that drops again at once, so a flapping link could leave the daemon
// offline for a minute at a time while calls ring; a call daemon retries
// sooner.
const maxReconnectInterval = 5 * time.Second

// reconnectBackoff is the reconnection schedule: 100 ms doubling up to
// maxReconnectInterval, ±30%, forever.
func reconnectBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.Multiplier = 2
	b.RandomizationFactor = 0.3
	b.MaxInterval = maxReconnectInterval
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// dcList converts custom DC options; with none it returns gotd's production
// list.
func dcList(opts []DCOption, dc int) (dcs.List, error) {
	if len(opts) == 0 {
		return dcs.Prod(), nil
	}
	var list dcs.List
	found := false
	for i, o := range opts {
		if o.ID <= 0 {
			return dcs.List{}, fmt.Errorf("mtproto config: dc_options[%d]: id must be > 0, got %d", i, o.ID)
		}
		host, portStr, err := net.SplitHostPort(o.Addr)
		if err != nil {
			return dcs.List{}, fmt.Errorf("mtproto config: dc_options[%d]: addr %q: %w", i, o.Addr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			return dcs.List{}, fmt.Errorf("mtproto config: dc_options[%d]: addr %q: invalid port", i, o.Addr)
		}
		if host == "" {
			return dcs.List{}, fmt.Errorf("mtproto config: dc_options[%d]: addr %q: empty host", i, o.Addr)
		}
		opt := tg.DCOption{ID: o.ID, IPAddress: host, Port: port}
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			opt.Ipv6 = true
		}
		list.Options = append(list.Options, opt)
		if o.ID == dc {
			found = true
		}
	}
	if !found {
		return dcs.List{}, fmt.Errorf("mtproto config: dc %d has no entry in dc_options", dc)
	}
	return list, nil
}

// fixedResolver dials from the configured list whatever list gotd passes
// (gotd replaces its list with the server-advertised one after connecting).
type fixedResolver struct {
	list dcs.List
	next dcs.Resolver
}

func (r fixedResolver) Primary(ctx context.Context, dc int, _ dcs.List) (transport.Conn, error) {
	return r.next.Primary(ctx, dc, r.list)
}

func (r fixedResolver) MediaOnly(ctx context.Context, dc int, _ dcs.List) (transport.Conn, error) {
	return r.next.MediaOnly(ctx, dc, r.list)
}

func (r fixedResolver) CDN(ctx context.Context, dc int, _ dcs.List) (transport.Conn, error) {
	return r.next.CDN(ctx, dc, r.list)
}

// API returns the RPC client; every call goes through the typed-errors,
// updates-hook and retry middlewares.
func (c *Client) API() *tg.Client { return c.api }

// Dialing reports the address the client dialed last and why that dial or
// connection failed (nil while connected, or when nothing failed yet): what
// "connecting to DC 2 (149.154.167.50:443): <err>" shows.
func (c *Client) Dialing() (addr string, err error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.dialAddr, c.dialErr
}

// Connected reports whether the client has a live, set-up connection.
func (c *Client) Connected() bool {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.connected
}

// Run connects, calls f once the connection is ready, and returns when f
// returns or ctx ends; gotd reconnects by itself in between. Run may be
// called only once per Client.
func (c *Client) Run(ctx context.Context, f func(ctx context.Context) error) error {
	first := false
	c.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("mtproto: Run called twice")
	}
	evDone := make(chan struct{})
	go func() {
		defer close(evDone)
		c.deliverEvents(ctx, c.stop)
	}()
	// gotd does not watch ctx while it waits for a server's handshake
	// answer: closing the connections when ctx ends makes it return.
	closerDone := make(chan struct{})
	go func() {
		defer close(closerDone)
		select {
		case <-ctx.Done():
			c.closeConns()
		case <-c.stop:
		}
	}()
	err := c.client.Run(ctx, func(ctx context.Context) error {
		// Once f returns, gotd closes the connection: that is the stop,
		// even while ctx is still live (the daemon ends its work first).
		defer c.markStopping()
		return f(ctx)
	})
	close(c.stop)
	<-closerDone
	<-evDone
	if err != nil && ctx.Err() != nil {
		// Whatever broke once ctx ended (a connection closed under
		// gotd) is the stop itself.
		return fmt.Errorf("mtproto: run: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("mtproto: run: %w", err)
	}
	return nil
}

// --- updates -------------------------------------------------------------

type nopSink struct{}

func (nopSink) Updates(context.Context, tg.UpdatesClass, bool) error { return nil }
func (nopSink) Connected(context.Context)                            {}
func (nopSink) Disconnected(error)                                   {}

func (c *Client) handlePushed(ctx context.Context, u tg.UpdatesClass) error {
	if g := c.cfg.Gate; g != nil && !g.Open() {
		// Not the account calld keeps, or not known yet to be: its
		// updates are not applied (a confirmed login fetches the
		// difference).
		c.log.Debug().Str(logging.FieldEvent, logging.EventMTProtoUpdates).Str(logging.FieldConstructor, u.TypeName()).
			Msg("pushed updates dropped: the session is not confirmed as the state file's account")
		return nil
	}
	if err := c.sink.Updates(ctx, u, false); err != nil {
		c.log.Warn().Str(logging.FieldEvent, logging.EventMTProtoUpdates).AnErr(logging.FieldErr, err).Msg("updates sink refused pushed updates")
		return fmt.Errorf("%w: %w", middleware.ErrUpdatesSink, err)
	}
	return nil
}

// updatesHook hands an RPC's Updates result to the sink, with own=true,
// before the RPC returns. It is gotd's hook.UpdateHook (which calls it for
// every *tg.UpdatesBox result and wraps its error with "hook: "); own is
// carried by this closure, as the hook only ever sees RPC results.
func (c *Client) updatesHook(ctx context.Context, u tg.UpdatesClass) error {
	if u == nil {
		return nil
	}
	if err := c.sink.Updates(ctx, u, true); err != nil {
		return fmt.Errorf("%w: %w", middleware.ErrUpdatesSink, err)
	}
	return nil
}

// --- connection events ---------------------------------------------------

// sessionHook reports Connected each time gotd stores the session, which
// v0.93.0 does once per set-up primary connection (Client.onSession).
type sessionHook struct {
	session.Storage
	c *Client
}

func (h sessionHook) StoreSession(ctx context.Context, data []byte) error {
	if err := h.Storage.StoreSession(ctx, data); err != nil {
		return err
	}
	h.c.onSessionStored()
	return nil
}

func (c *Client) onSessionStored() {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.connected && c.connectedGen == c.dialGen {
		return
	}
	if c.lostGen >= c.dialGen {
		// gotd stores the session from a message handler goroutine, which
		// can run after the connection is already gone.
		return
	}
	c.connected = true
	c.connectedGen = c.dialGen
	c.dialErr = nil
	if c.up != nil {
		close(c.up)
		c.up = nil
	}
	c.pushEventLocked(connEvent{connected: true})
}

// waitConnected is Retry.Connected: nil while connected, else a channel
// closed at the next successful connection.
func (c *Client) waitConnected() <-chan struct{} {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.connected {
		return nil
	}
	if c.up == nil {
		c.up = make(chan struct{})
	}
	return c.up
}

func (c *Client) onConnLost(gen uint64, err error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.lostGen = max(c.lostGen, gen)
	if gen == c.dialGen && !errors.Is(err, errConnClosed) {
		c.dialErr = err
	}
	if !c.connected || c.connectedGen != gen {
		return
	}
	c.connected = false
	c.pushEventLocked(connEvent{err: err, stop: c.closing || c.stopping})
}

func (c *Client) markStopping() {
	c.connMu.Lock()
	c.stopping = true
	c.connMu.Unlock()
}

func (c *Client) pushEventLocked(e connEvent) {
	c.events = append(c.events, e)
	select {
	case c.eventSignal <- struct{}{}:
	default:
	}
}

// deliverEvents runs during Run. After ctx ends it still delivers a
// queued disconnection (the one of Run's own shutdown), but no connection.
func (c *Client) deliverEvents(ctx context.Context, runDone <-chan struct{}) {
	for {
		c.connMu.Lock()
		events := c.events
		c.events = nil
		c.connMu.Unlock()
		for _, e := range events {
			if e.connected {
				if ctx.Err() != nil {
					continue
				}
				c.log.Info().Str(logging.FieldEvent, logging.EventTelegramConnected).Int(logging.FieldDC, c.cfg.DC).Msg("connected to Telegram")
				c.sink.Connected(ctx)
			} else {
				// The disconnection of a stop is expected: info, so
				// that journalctl -p warning does not show restarts.
				l := c.log.Warn()
				if e.stop || ctx.Err() != nil {
					l = c.log.Info()
				}
				l.Str(logging.FieldEvent, logging.EventTelegramDisconnected).Int(logging.FieldDC, c.cfg.DC).AnErr(logging.FieldErr, e.err).Msg("disconnected from Telegram")
				c.sink.Disconnected(e.err)
			}
		}
		select {
		case <-c.eventSignal:
		case <-runDone:
			// gotd has closed its connections: one last drain.
			c.connMu.Lock()
			pending := len(c.events)
			c.connMu.Unlock()
			if pending == 0 {
				return
			}
		}
	}
}

// errConnClosed is reported when the connection was closed locally.
var errConnClosed = errors.New("connection closed")

// dial opens TCP connections for gotd and watches them for loss.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	c.connMu.Lock()
	c.dialAddr = addr
	if err != nil {
		if ctx.Err() == nil {
			c.dialErr = err
		}
		c.connMu.Unlock()
		if ctx.Err() == nil {
			c.log.Warn().Str(logging.FieldEvent, logging.EventTelegramDial).Int(logging.FieldDC, c.cfg.DC).Str(logging.FieldAddr, addr).
				AnErr(logging.FieldErr, err).Msg("cannot reach Telegram")
		}
		return nil, err
	}
	c.dialGen++
	w := &watchedConn{Conn: conn, c: c, gen: c.dialGen}
	if c.conns == nil {
		c.conns = map[*watchedConn]struct{}{}
	}
	closing := c.closing
	if !closing {
		c.conns[w] = struct{}{}
	}
	c.connMu.Unlock()
	if closing {
		// Dialed while Run was ending, after closeConns.
		_ = w.Close()
		return nil, errConnClosed
	}
	return w, nil
}

// closeConns closes every open connection (Run's context ended).
func (c *Client) closeConns() {
	c.connMu.Lock()
	conns := c.conns
	c.conns = nil
	c.closing = true
	c.connMu.Unlock()
	for w := range conns {
		_ = w.Close()
	}
}

type watchedConn struct {
	net.Conn
	c    *Client
	gen  uint64
	once sync.Once
}

func (w *watchedConn) lost(err error) {
	w.once.Do(func() { w.c.onConnLost(w.gen, err) })
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil && !isTimeout(err) {
		w.lost(err)
	}
	return n, err
}

func (w *watchedConn) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if err != nil && !isTimeout(err) {
		w.lost(err)
	}
	return n, err
}

func (w *watchedConn) Close() error {
	w.lost(errConnClosed)
	w.c.connMu.Lock()
	delete(w.c.conns, w)
	w.c.connMu.Unlock()
	return w.Conn.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
