package daemon

import (
	"context"
	"encoding/json"

	"github.com/calld/calld"
)

// The media side of the control API (calld.MediaService), refused while
// no account is logged in like the other call routes.

var _ calld.MediaService = service{}

func (s service) Signaling(ctx context.Context, id int64, since uint64, follow bool, fn func(calld.SignalingPayload) error) error {
	if err := s.authorized(); err != nil {
		return err
	}
	return s.m.manager.Signaling(ctx, id, since, follow, fn)
}

func (s service) SendSignaling(ctx context.Context, id int64, data []byte) error {
	if err := s.authorized(); err != nil {
		return err
	}
	return s.m.manager.SendSignaling(ctx, id, data)
}

func (s service) Rate(ctx context.Context, id int64, rating int, comment string) (calld.Call, error) {
	if err := s.authorized(); err != nil {
		return calld.Call{}, err
	}
	return s.m.manager.Rate(ctx, id, rating, comment)
}

func (s service) SaveDebug(ctx context.Context, id int64, data json.RawMessage) (calld.Call, error) {
	if err := s.authorized(); err != nil {
		return calld.Call{}, err
	}
	return s.m.manager.SaveDebug(ctx, id, data)
}
