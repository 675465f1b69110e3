package daemon

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// checkSimSession refuses to run against the simulator on a state file
// whose session logged in at other servers (a real login): gotd would
// replace its auth key and calld reset its updates state. A session the
// simulator could have made (its DC, loopback addresses only) is kept:
// it is only ever a former simulator's.
func (m *Main) checkSimSession(ctx context.Context) error {
	srv, ok, err := m.db.SessionStorage().Servers(ctx)
	if err != nil {
		return fmt.Errorf("--sim: state file %s: %w; --sim does not touch a session it cannot read", m.Config.State.Path, err)
	}
	if !ok || (srv.DC == m.Sim.DC && !srv.TestMode && allLoopback(srv.Addrs)) {
		return nil
	}
	where := "no address"
	if len(srv.Addrs) > 0 {
		where = strings.Join(srv.Addrs, ", ")
	}
	return fmt.Errorf("--sim: state file %s holds a session for DC %d (%s), not the simulator's (DC %d on loopback): "+
		"--sim never touches another server's session; run `calld serve --sim` without a config "+
		"(its state then goes to a fresh directory) or give it its own file with --state PATH",
		m.Config.State.Path, srv.DC, where, m.Sim.DC)
}

func allLoopback(addrs []string) bool {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}
