package config

import (
	"encoding/pem"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
)

// maxSocketPath is the longest path a Unix socket address can hold on
// Linux (sun_path is 108 bytes, NUL included).
const maxSocketPath = 107

// Validate checks every value and returns the first problem as an *Error
// naming the key (without a line: Parse and Load add it). With sim false,
// telegram.api_id and telegram.api_hash are required; with sim true (the
// embedded simulator) they may be empty. A non-empty telegram.public_keys
// must name a readable file holding at least one PEM block.
func (c Config) Validate(sim bool) error {
	bad := func(key, format string, args ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if err := c.Telegram.validate(sim, bad); err != nil {
		return err
	}
	if err := c.State.validate(bad); err != nil {
		return err
	}
	if err := c.Control.validate(bad); err != nil {
		return err
	}
	if err := c.Log.validate(bad); err != nil {
		return err
	}
	if err := c.Policy.validate(bad); err != nil {
		return err
	}
	if err := c.Media.validate("media.", bad); err != nil {
		return err
	}
	return c.Metrics.validate(bad)
}

// validate checks [metrics]: listen is empty or host:port, the host
// may be empty (every interface) and the port 0 (any free one).
func (mt Metrics) validate(bad badFunc) error {
	if mt.Listen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(mt.Listen)
	if err != nil {
		return bad("metrics.listen", "%q is not host:port", mt.Listen)
	}
	if strings.IndexFunc(host, isSpaceOrControl) >= 0 {
		return bad("metrics.listen", "%q has no valid host", mt.Listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad("metrics.listen", "%q has no valid port (0..65535)", mt.Listen)
	}
	return nil
}

// badFunc makes the *Error for a key.
type badFunc func(key, format string, args ...any) error

// validate checks [telegram]: the API id and hash (unless sim), the DC
// among Telegram's or the listed options, the public keys file.
func (t Telegram) validate(sim bool, bad badFunc) error {
	switch {
	case t.APIID < 0 || t.APIID > math.MaxInt32:
		return bad("telegram.api_id", "%d is out of range (1..%d)", t.APIID, math.MaxInt32)
	case t.APIID == 0 && !sim:
		return bad("telegram.api_id", "required (from my.telegram.org; or set $%s, or run with --sim)", EnvAPIID)
	}
	switch {
	case strings.IndexFunc(t.APIHash, isSpaceOrControl) >= 0:
		return bad("telegram.api_hash", "must not contain spaces or control characters")
	case t.APIHash == "" && !sim:
		return bad("telegram.api_hash", "required (from my.telegram.org; or set $%s, or run with --sim)", EnvAPIHash)
	}
	if t.Account != "" {
		if err := CheckAccount(t.Account); err != nil {
			return bad("telegram.account", "%v", err)
		}
	}
	if t.DC <= 0 || t.DC > math.MaxInt32 {
		return bad("telegram.dc", "%d is not a DC id (Telegram's are 1..5)", t.DC)
	}
	if err := t.validateDCOptions(bad); err != nil {
		return err
	}
	if t.PublicKeys != "" {
		if err := checkPEM(t.PublicKeys); err != nil {
			return &Error{Key: "telegram.public_keys", Msg: err.Error(), Err: err}
		}
	}
	return nil
}

// validateDCOptions checks telegram.dc_options and that telegram.dc is
// among them, or among Telegram's DCs 1..5 when there are none.
func (t Telegram) validateDCOptions(bad badFunc) error {
	if len(t.DCOptions) == 0 {
		if t.DC > 5 {
			return bad("telegram.dc", "%d is not one of Telegram's DCs 1..5 (list other servers in telegram.dc_options)", t.DC)
		}
		return nil
	}
	found := false
	for i, o := range t.DCOptions {
		key := fmt.Sprintf("telegram.dc_options[%d]", i)
		if o.ID <= 0 || o.ID > math.MaxInt32 {
			return bad(key+".id", "%d is not a DC id (want > 0)", o.ID)
		}
		if err := checkAddr(o.Addr); err != nil {
			return bad(key+".addr", "%v", err)
		}
		found = found || o.ID == t.DC
	}
	if !found {
		return bad("telegram.dc", "DC %d is not among telegram.dc_options", t.DC)
	}
	return nil
}

// validate checks [state].
func (st State) validate(bad badFunc) error {
	if err := checkPath(st.Path); err != nil {
		return bad("state.path", "%v", err)
	}
	if st.JournalMaxAge.Duration < 0 {
		return bad("state.journal_max_age", "must not be negative")
	}
	if st.JournalMaxEvents < 0 {
		return bad("state.journal_max_events", "must not be negative")
	}
	return nil
}

// validate checks [control].
func (ct Control) validate(bad badFunc) error {
	if err := checkPath(ct.Socket); err != nil {
		return bad("control.socket", "%v", err)
	}
	if len(ct.Socket) > maxSocketPath {
		return bad("control.socket", "path is %d bytes, longer than a Unix socket address can hold (%d)", len(ct.Socket), maxSocketPath)
	}
	if ct.SocketMode > 0o777 {
		return bad("control.socket_mode", "%s has more than permission bits (at most 0777)", ct.SocketMode)
	}
	for i, uid := range ct.AllowUIDs {
		if uid < 0 || uid >= math.MaxUint32 {
			return bad(fmt.Sprintf("control.allow_uids[%d]", i), "%d is not a uid", uid)
		}
	}
	if ct.MaxConnections < 2 {
		return bad("control.max_connections", "%d: must be at least 2 (an eighth is kept for root and the daemon's uid)", ct.MaxConnections)
	}
	if n := ct.MaxConnectionsPerUID; n < 1 || n > ct.MaxConnections {
		return bad("control.max_connections_per_uid", "%d: must be at least 1 and at most max_connections (%d)", n, ct.MaxConnections)
	}
	if ct.IdleTimeout.Duration <= 0 {
		return bad("control.idle_timeout", "must be positive")
	}
	return nil
}

// validate checks [log].
func (l Log) validate(bad badFunc) error {
	if err := oneOf(l.Level, LevelDebug, LevelInfo, LevelWarn, LevelError); err != nil {
		return bad("log.level", "%v", err)
	}
	if err := oneOf(l.Format, FormatJSON, FormatConsole, FormatAuto); err != nil {
		return bad("log.format", "%v", err)
	}
	return nil
}

// validate checks [policy].
func (p Policy) validate(bad badFunc) error {
	if err := oneOf(p.Incoming, IncomingRing, IncomingReject); err != nil {
		return bad("policy.incoming", "%v", err)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"policy.max_duration", p.MaxDuration}, {"policy.ring_timeout", p.RingTimeout}, {"policy.receive_timeout", p.ReceiveTimeout}} {
		if d.v.Duration < 0 {
			return bad(d.key, "%s is negative", d.v.Duration)
		}
	}
	return nil
}

// validate checks a protocol: at least one library version (non-empty,
// no spaces), 0 < min_layer <= max_layer, and some transport allowed.
func (md Media) validate(prefix string, bad badFunc) error {
	if len(md.LibraryVersions) == 0 {
		return bad(prefix+"library_versions", "at least one library version is required (such as \"4.0.0\")")
	}
	for i, v := range md.LibraryVersions {
		if v == "" || strings.IndexFunc(v, isSpaceOrControl) >= 0 {
			return bad(fmt.Sprintf("%slibrary_versions[%d]", prefix, i), "%q is not a version (non-empty, no spaces)", v)
		}
	}
	if md.MinLayer <= 0 || md.MinLayer > math.MaxInt32 {
		return bad(prefix+"min_layer", "%d is not a layer (want > 0)", md.MinLayer)
	}
	if md.MaxLayer < md.MinLayer || md.MaxLayer > math.MaxInt32 {
		return bad(prefix+"max_layer", "%d is below %smin_layer (%d) or out of range", md.MaxLayer, prefix, md.MinLayer)
	}
	if !md.UDPP2P && !md.UDPReflector {
		return bad(prefix+"udp_reflector", "udp_p2p and udp_reflector are both false: the call would have no transport")
	}
	return nil
}

// ValidateMedia checks a per-call protocol override like [media]; its
// errors name the JSON field ("protocol.min_layer").
func ValidateMedia(md Media) error {
	return md.validate("protocol.", func(key, format string, args ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	})
}

// MaxAccountLen is the longest account name: /run/calld/NAME.sock stays
// well within a Unix socket address, and a Kubernetes name can hold it.
const MaxAccountLen = 64

// CheckAccount checks an account name ([telegram] account, the CLI's
// --account and $CALLD_ACCOUNT): 1 to MaxAccountLen ASCII letters, digits,
// '-' and '_', starting with a letter or digit. Such a name is a file name
// (/etc/calld/NAME.toml, /run/calld/NAME.sock), a systemd instance that
// needs no escaping (calld@NAME.service) and a metric label value as is.
func CheckAccount(name string) error {
	ok := name != "" && len(name) <= MaxAccountLen
	for i := 0; ok && i < len(name); i++ {
		b := name[i]
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		ok = alnum || i > 0 && (b == '-' || b == '_')
	}
	if !ok {
		return fmt.Errorf("%q is not an account name: 1 to %d ASCII letters, digits, '-' and '_', starting with a letter or digit", name, MaxAccountLen)
	}
	return nil
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

func oneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("must not be empty")
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("must not contain a NUL byte")
	}
	return nil
}

// checkAddr accepts host:port with a non-empty host and a port in 1..65535.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" || strings.IndexFunc(host, isSpaceOrControl) >= 0 {
		return fmt.Errorf("%q has no valid host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no valid port (1..65535)", addr)
	}
	return nil
}

// checkPEM reads the public keys file and checks that it holds at least one
// PEM block; the mtproto package parses the keys themselves.
func checkPEM(path string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read: %w", err)
	}
	if b, _ := pem.Decode(data); b == nil {
		return fmt.Errorf("%s holds no PEM block (want RSA PUBLIC KEY or PUBLIC KEY blocks)", path)
	}
	return nil
}
