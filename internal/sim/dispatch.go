package sim

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
)

// Record is one RPC the server received (re-sends of the same message are
// not recorded twice).
type Record struct {
	// Method is the TL method name, e.g. "phone.discardCall".
	Method string
	// Req is the decoded request, e.g. *tg.PhoneDiscardCallRequest; nil
	// for a method the server does not answer (INPUT_METHOD_INVALID).
	Req any
	// At is the server clock when the request arrived.
	At time.Time
	// Session is the MTProto session id of the caller.
	Session int64
	// Account is the user id of the account the caller's auth key acted
	// as when the request arrived; 0 before it signed in.
	Account int64
}

type reqKey struct {
	session int64
	msgID   int64
}

// reqEntry caches the answer of one request so a re-send gets the same
// answer instead of a second execution.
type reqEntry struct {
	done bool
	res  bin.Encoder
	err  *tgerr.Error
}

type sessionInfo struct {
	sess    tgtest.Session
	updates bool // has made a request not wrapped in invokeWithoutUpdates
}

type failRule struct {
	err   *tgerr.Error
	times int
}

// rpcCtx is the context of one request being handled under s.mu.
type rpcCtx struct {
	session int64
	keyID   [8]byte
	acct    *Account // the account the key acts as; nil: not authorized
	method  string
	// post runs after the answer was sent, without s.mu held.
	post []func()
}

func (rc *rpcCtx) after(f func()) { rc.post = append(rc.post, f) }

// vector encodes a bare TL Vector of boxed objects.
type vector []bin.Encoder

func (v vector) Encode(b *bin.Buffer) error {
	b.PutVectorHeader(len(v))
	for _, e := range v {
		if err := e.Encode(b); err != nil {
			return err
		}
	}
	return nil
}

const (
	maxCachedRequests = 20000
	// maxRecords bounds Requests(); Count keeps counting past it.
	maxRecords = 200000
)

// methods that an unauthorized key may call.
var noAuthMethods = map[string]bool{
	"help.getConfig":        true,
	"help.getNearestDc":     true,
	"help.getCdnConfig":     true,
	"auth.sendCode":         true,
	"auth.signIn":           true,
	"auth.checkPassword":    true,
	"account.getPassword":   true,
	"auth.exportLoginToken": true,
	"auth.logOut":           true,
}

// MTProto service messages a client may send (mt.*TypeID of gotd's
// internal/mt, which cannot be imported).
var serviceMessages = map[uint32]bool{
	0x62d6b459: true, // msgs_ack
	0x7d861a08: true, // msg_resend_req
	0xda69fb52: true, // msgs_state_req
	0x8cc0d131: true, // msgs_all_info
	0xe7512126: true, // destroy_session
	0x9299359f: true, // http_wait
}

func methodName(full string) string {
	if i := strings.IndexByte(full, '#'); i >= 0 {
		return full[:i]
	}
	return full
}

type peekID struct{ id uint32 }

func (p *peekID) Decode(b *bin.Buffer) error {
	id, err := b.PeekID()
	if err != nil {
		return err
	}
	p.id = id
	return nil
}

func (p *peekID) Encode(*bin.Buffer) error { return errors.New("peekID is not encodable") }

// onMessage is the tgtest handler: it unwraps invokeWithLayer,
// initConnection and invokeWithoutUpdates, acknowledges the message,
// de-duplicates re-sends, records the request and answers it.
func (s *Server) onMessage(srv *tgtest.Server, req *tgtest.Request) error {
	id, noUpdates, apiID, err := unwrapQuery(req.Buf)
	if err != nil {
		return err
	}
	if serviceMessages[id] {
		// Client service messages (acks of our pushes, resend requests…)
		// need no answer.
		s.mu.Lock()
		s.state.service++
		s.notifyLocked()
		s.mu.Unlock()
		return nil
	}
	name, ok := s.types[id]
	if !ok {
		return rpcError(400, "INPUT_CONSTRUCTOR_INVALID")
	}
	method := methodName(name)
	// A method the server does not answer is not decoded: it goes the
	// same way as the others with a nil request, and handleLocked answers
	// INPUT_METHOD_INVALID.
	var obj bin.Object
	if newReq, ok := requests[id]; ok {
		obj = newReq()
		if err := obj.Decode(req.Buf); err != nil {
			s.log.Debug("decode request", zap.Error(err))
			return rpcError(400, "INPUT_REQUEST_INVALID")
		}
	}

	key := reqKey{session: req.Session.ID, msgID: req.MsgID}
	s.mu.Lock()
	// Telegram acknowledges what it receives; without it gotd re-sends
	// every 5 s and gives up after 5 tries.
	if !s.state.noAck {
		if err := srv.SendAck(req.RequestCtx, req.Session, req.MsgID); err != nil {
			s.log.Debug("send ack", zap.Error(err))
		}
	}
	s.touchSessionLocked(req.Session, noUpdates)
	s.bindByAPIIDLocked(req.Session.AuthKey.ID, apiID)
	if e, ok := s.state.reqs[key]; ok {
		// A re-send: answer again if we already answered, else ignore.
		s.state.resends++
		s.notifyLocked()
		var err error
		if e.done {
			err = s.sendAnswer(req, e.res, e.err)
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Debug("re-send answer", zap.Error(err))
		}
		return nil
	}
	entry := &reqEntry{}
	s.rememberLocked(key, entry)
	s.recordLocked(method, obj, req.Session)
	hold := s.state.holds[method]
	if hold != nil {
		s.state.heldRPCs[method]++
	}
	s.mu.Unlock()

	if hold != nil {
		s.processWhenReleased(hold, req, method, obj, entry)
		return nil
	}
	return s.process(req, method, obj, entry, false)
}

// unwrapQuery decodes the invokeWithLayer, initConnection and
// invokeWithoutUpdates wrappers at the start of buf and returns the
// constructor id of the query inside; noUpdates reports an
// invokeWithoutUpdates, apiID the api_id of an initConnection (0: none).
func unwrapQuery(buf *bin.Buffer) (id uint32, noUpdates bool, apiID int, err error) {
	id, err = buf.PeekID()
	if err != nil {
		return 0, false, 0, rpcError(400, "INPUT_REQUEST_INVALID")
	}
	var ic *tg.InitConnectionRequest
	for {
		var p peekID
		var w bin.Decoder
		switch id {
		case tg.InvokeWithLayerRequestTypeID:
			w = &tg.InvokeWithLayerRequest{Query: &p}
		case tg.InitConnectionRequestTypeID:
			ic = &tg.InitConnectionRequest{Query: &p}
			w = ic
		case tg.InvokeWithoutUpdatesRequestTypeID:
			w = &tg.InvokeWithoutUpdatesRequest{Query: &p}
			noUpdates = true
		default:
			if ic != nil {
				apiID = ic.APIID
			}
			return id, noUpdates, apiID, nil
		}
		if err := w.Decode(buf); err != nil {
			return 0, false, 0, rpcError(400, "INPUT_REQUEST_INVALID")
		}
		id = p.id
	}
}

// process executes the request under s.mu, sends the answer and runs the
// post actions (peer reactions) afterwards.
//
// A held request whose connection died while it was held is dropped, not
// executed: it models a request lost in transit, which the client retries.
func (s *Server) process(req *tgtest.Request, method string, obj bin.Object, entry *reqEntry, held bool) error {
	rc := &rpcCtx{session: req.Session.ID, keyID: req.Session.AuthKey.ID, method: method}
	s.mu.Lock()
	if held {
		s.state.heldRPCs[method]--
		// The ack doubles as a probe of the connection.
		if err := s.srv.SendAck(s.serverCtx(), req.Session, req.MsgID); err != nil {
			s.state.dropped[method]++
			delete(s.state.reqs, reqKey{session: req.Session.ID, msgID: req.MsgID})
			s.notifyLocked()
			s.mu.Unlock()
			s.log.Debug("held request dropped: connection gone", zap.String("method", method))
			return nil
		}
	}
	s.state.executed[method]++
	s.notifyLocked()
	res, err := s.execLocked(rc, obj)
	var tgErr *tgerr.Error
	if err != nil {
		if !errors.As(err, &tgErr) {
			s.log.Warn("handler failed", zap.String("method", method), zap.Error(err))
			tgErr = rpcError(500, "INTERNAL_SERVER_ERROR")
		}
		res = nil
	}
	entry.done, entry.res, entry.err = true, res, tgErr
	sendErr := s.sendAnswer(req, res, tgErr)
	s.mu.Unlock()
	if sendErr != nil {
		s.log.Debug("send answer", zap.String("method", method), zap.Error(sendErr))
	}
	for _, f := range rc.post {
		f()
	}
	return nil
}

func (s *Server) sendAnswer(req *tgtest.Request, res bin.Encoder, e *tgerr.Error) error {
	if e != nil {
		return s.srv.SendErr(req, e)
	}
	return s.srv.SendResult(req, res)
}

func (s *Server) execLocked(rc *rpcCtx, obj bin.Object) (bin.Encoder, error) {
	if f, ok := s.state.fails[rc.method]; ok && f.times > 0 {
		f.times--
		if f.times == 0 {
			delete(s.state.fails, rc.method)
		}
		return nil, f.err
	}
	rc.acct = s.accountOfLocked(rc.keyID)
	if !noAuthMethods[rc.method] && rc.acct == nil {
		return nil, rpcError(401, "AUTH_KEY_UNREGISTERED")
	}
	return s.handleLocked(rc, obj)
}

func (s *Server) touchSessionLocked(sess tgtest.Session, noUpdates bool) {
	si, ok := s.state.sessions[sess.ID]
	if !ok {
		si = &sessionInfo{sess: sess}
		s.state.sessions[sess.ID] = si
	}
	if !noUpdates {
		si.updates = true
	}
}

func (s *Server) rememberLocked(key reqKey, e *reqEntry) {
	st := &s.state
	st.reqs[key] = e
	st.reqOrder = append(st.reqOrder, key)
	if len(st.reqOrder) > maxCachedRequests {
		drop := len(st.reqOrder) - maxCachedRequests/2
		for _, k := range st.reqOrder[:drop] {
			delete(st.reqs, k)
		}
		st.reqOrder = append(st.reqOrder[:0:0], st.reqOrder[drop:]...)
	}
}

func (s *Server) recordLocked(method string, obj bin.Object, sess tgtest.Session) {
	st := &s.state
	r := Record{Method: method, Req: obj, At: s.now(), Session: sess.ID}
	if a := s.accountOfLocked(sess.AuthKey.ID); a != nil {
		r.Account = a.id
		a.counts[method]++
	}
	st.records = append(st.records, r)
	if len(st.records) > maxRecords {
		st.records = append(st.records[:0:0], st.records[len(st.records)-maxRecords/2:]...)
	}
	st.counts[method]++
	s.notifyLocked()
}

// notifyLocked wakes every WaitCount.
func (s *Server) notifyLocked() {
	close(s.state.changed)
	s.state.changed = make(chan struct{})
}

// Requests returns a copy of the RPCs received so far, in arrival order
// (the newest 100000 to 200000 once more than 200000 arrived).
func (s *Server) Requests() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.state.records...)
}

// Count is how many requests of method ("phone.discardCall") arrived,
// from every account (Account.Count counts one account's).
func (s *Server) Count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.counts[method]
}

// Executed is how many requests of method were executed and answered
// (including injected FailRPC errors). It differs from Count by requests
// still held and by held requests dropped because their connection died
// (see Dropped).
func (s *Server) Executed(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.executed[method]
}

// Held is how many requests of method wait for a HoldRPC release now.
// Count - Executed - Dropped - Held are the requests being executed.
func (s *Server) Held(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.heldRPCs[method]
}

// Dropped is how many held requests of method were never executed because
// their connection was gone when HoldRPC released them.
func (s *Server) Dropped(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.dropped[method]
}

// Changed returns a channel closed at the server's next change: a
// request arrived, was executed or dropped (every counter of Count,
// Executed, Held and Dropped). Take it before reading the counters, so
// that no change is missed in between.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.changed
}

// WaitCount blocks until at least n requests of method have arrived, or
// ctx is done. Tests use it instead of sleeping.
func (s *Server) WaitCount(ctx context.Context, method string, n int) error {
	return s.waitCount(ctx, s.state.counts, method, n)
}

// waitCount blocks until counts[method] >= n (counts guarded by s.mu).
func (s *Server) waitCount(ctx context.Context, counts map[string]int, method string, n int) error {
	for {
		s.mu.Lock()
		c, ch := counts[method], s.state.changed
		s.mu.Unlock()
		if c >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// FailRPC makes the next `times` calls of method fail with err (for
// example tgerr.New(500, "CALL_OCCUPY_FAILED") or tgerr.New(420,
// "FLOOD_WAIT_3")) without executing them. times <= 0 clears the rule.
func (s *Server) FailRPC(method string, err *tgerr.Error, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if times <= 0 || err == nil {
		delete(s.state.fails, method)
		return
	}
	s.state.fails[method] = &failRule{err: err, times: times}
}

// HoldRPC makes every call of method that arrives from now on wait: it is
// acknowledged and recorded at once, but executed and answered only when
// release is called (release is idempotent). Requests arriving after
// release are answered normally. A held request whose connection is gone
// at release (Cut) is dropped without executing, like a request lost in
// transit; the client's retry on its new connection is executed.
func (s *Server) HoldRPC(method string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.state.holds[method]
	if !ok {
		ch = make(chan struct{})
		s.state.holds[method] = ch
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.state.holds[method] == ch {
			delete(s.state.holds, method)
		}
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// processWhenReleased processes a held request once its hold is released,
// on a goroutine Close waits for (it ends with the server's ctx).
func (s *Server) processWhenReleased(hold <-chan struct{}, req *tgtest.Request, method string, obj bin.Object, entry *reqEntry) {
	ctx := s.serverCtx()
	s.tasks.Go(func() error {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil
		}
		_ = s.process(req, method, obj, entry, true)
		return nil
	})
}
