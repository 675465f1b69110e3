package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/gotd/td/session"
)

// SessionStorage keeps gotd's MTProto session in the state file. It
// implements session.Storage.
type SessionStorage struct {
	db *DB
}

var _ session.Storage = (*SessionStorage)(nil)

// SessionStorage returns the session.Storage of this file.
func (db *DB) SessionStorage() *SessionStorage { return &SessionStorage{db: db} }

// LoadSession returns the stored session, or session.ErrNotFound.
func (s *SessionStorage) LoadSession(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var data []byte
	err := s.db.View(func(tx *Tx) error {
		var err error
		data, err = tx.Session()
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: load session: %w", err)
	}
	return data, nil
}

// StoreSession saves the session durably.
func (s *SessionStorage) StoreSession(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.db.Update(func(tx *Tx) error { return tx.SetSession(data) }); err != nil {
		return fmt.Errorf("store: store session: %w", err)
	}
	return nil
}

// SessionServers is where a stored session logged in.
type SessionServers struct {
	DC       int      // the DC of the auth key
	Addrs    []string // every address the session names: its DC's and its config's DC options
	TestMode bool     // Telegram's test DCs
}

// Servers reads where the stored session logged in, from gotd's session
// format (session.Loader's JSON). ok is false when there is no session.
// A session in another format is an error: nobody can tell whose it is.
func (s *SessionStorage) Servers(ctx context.Context) (srv SessionServers, ok bool, err error) {
	data, err := s.LoadSession(ctx)
	if errors.Is(err, session.ErrNotFound) || (err == nil && len(data) == 0) {
		return srv, false, nil
	}
	if err != nil {
		return srv, false, err
	}
	var v struct {
		Version int
		Data    session.Data
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return srv, false, fmt.Errorf("store: session: not gotd's session format: %w", err)
	}
	if v.Version != 1 {
		return srv, false, fmt.Errorf("store: session: gotd session format version %d, expected 1", v.Version)
	}
	d := v.Data
	srv = SessionServers{DC: d.DC, TestMode: d.Config.TestMode}
	if d.Addr != "" {
		srv.Addrs = append(srv.Addrs, d.Addr)
	}
	for _, o := range d.Config.DCOptions {
		srv.Addrs = append(srv.Addrs, net.JoinHostPort(o.IPAddress, strconv.Itoa(o.Port)))
	}
	return srv, true, nil
}
