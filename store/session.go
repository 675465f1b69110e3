package store

import (
	"context"
	"errors"
	"fmt"

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
