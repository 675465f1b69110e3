package manager

import "time"

// serverNow is the server's clock as far as calld can tell: the newest
// server date seen, that of help.getConfig or of the updates state (the
// engine moves it to the date of every Updates container and difference
// before it dispatches their updates). A call dispatched from an Updates
// is thus judged against the date of the Updates that brought it, so a
// local clock ahead of (or behind) the server's does not make fresh calls
// look old (or old ones fresh). Before any date is known it is the local
// clock.
func (m *Manager) serverNow() time.Time {
	date := m.configDate
	if m.engine != nil {
		date = max(date, m.engine.State().Date)
	}
	if date == 0 {
		return m.now()
	}
	return time.Unix(int64(date), 0)
}
