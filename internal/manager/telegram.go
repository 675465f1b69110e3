package manager

import (
	"context"
	"strconv"
	"strings"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/fsm"
	"github.com/calld/calld/internal/mtproto"
	"github.com/calld/calld/internal/mtproto/callkey"
)

// Telegram is the MTProto side as the manager uses it; Client adapts an
// *mtproto.Client to it. Every method whose RPC returns Updates has handed
// them to Manager.Updates before it returns.
type Telegram interface {
	CallConfig(ctx context.Context) (mtproto.CallConfig, error)
	GetState(ctx context.Context) (*tg.UpdatesState, error)
	GetDifference(ctx context.Context, req *tg.UpdatesGetDifferenceRequest) (tg.UpdatesDifferenceClass, error)
	ResolvePeer(ctx context.Context, peer string) (*tg.User, error)

	ReceivedCall(ctx context.Context, peer tg.InputPhoneCall) error
	DiscardCall(ctx context.Context, d mtproto.Discard) (tg.UpdatesClass, error)
	PrepareCall(ctx context.Context) (*callkey.OutgoingCall, error)
	RequestCall(ctx context.Context, user tg.InputUserClass, out *callkey.OutgoingCall, randomID int32, video bool, protocol tg.PhoneCallProtocol) (*tg.PhonePhoneCall, error)
	ConfirmCall(ctx context.Context, out *callkey.OutgoingCall, acc *tg.PhoneCallAccepted) (key []byte, fp int64, res *tg.PhonePhoneCall, err error)
	// PrepareAccept and SendAccept are phone.acceptCall in two halves, so
	// that our secret b is persisted before g_b is sent.
	PrepareAccept(ctx context.Context, peer tg.InputPhoneCall, gAHash []byte) (*callkey.IncomingCall, error)
	SendAccept(ctx context.Context, in *callkey.IncomingCall, protocol tg.PhoneCallProtocol) (*tg.PhonePhoneCall, error)

	// The media side (signaling.go, rating.go).
	SendSignalingData(ctx context.Context, peer tg.InputPhoneCall, data []byte) error
	SetCallRating(ctx context.Context, peer tg.InputPhoneCall, rating int, comment string) error
	SaveCallDebug(ctx context.Context, peer tg.InputPhoneCall, debugJSON string) error
}

func (c client) SendSignalingData(ctx context.Context, peer tg.InputPhoneCall, data []byte) error {
	_, err := c.API().PhoneSendSignalingData(ctx, &tg.PhoneSendSignalingDataRequest{Peer: peer, Data: data})
	return err
}

// SetCallRating sends phone.setCallRating; its Updates result has been
// handed to the sink (the engine) when it returns.
func (c client) SetCallRating(ctx context.Context, peer tg.InputPhoneCall, rating int, comment string) error {
	_, err := c.API().PhoneSetCallRating(ctx, &tg.PhoneSetCallRatingRequest{Peer: peer, Rating: rating, Comment: comment})
	return err
}

func (c client) SaveCallDebug(ctx context.Context, peer tg.InputPhoneCall, debugJSON string) error {
	_, err := c.API().PhoneSaveCallDebug(ctx, &tg.PhoneSaveCallDebugRequest{Peer: peer, Debug: tg.DataJSON{Data: debugJSON}})
	return err
}

// Client adapts an mtproto.Client to Telegram.
func Client(c *mtproto.Client) Telegram { return client{c} }

type client struct{ *mtproto.Client }

func (c client) GetState(ctx context.Context) (*tg.UpdatesState, error) {
	return c.API().UpdatesGetState(ctx)
}

func (c client) GetDifference(ctx context.Context, req *tg.UpdatesGetDifferenceRequest) (tg.UpdatesDifferenceClass, error) {
	return c.API().UpdatesGetDifference(ctx, req)
}

// ResolvePeer resolves "@username" (contacts.resolveUsername) or a decimal
// user id (users.getUsers) to the user as the server returned it (its
// id, access hash and username).
func (c client) ResolvePeer(ctx context.Context, peer string) (*tg.User, error) {
	if name, ok := strings.CutPrefix(peer, "@"); ok {
		res, err := c.API().ContactsResolveUsername(ctx, name)
		switch {
		case tgerr.Is(err, "USERNAME_NOT_OCCUPIED"):
			return nil, calld.Errorf(calld.ENOTFOUND, "no user @%s", name)
		case tgerr.Is(err, "USERNAME_INVALID"):
			return nil, calld.Errorf(calld.EINVALID, "@%s is not a valid username", name)
		case err != nil:
			return nil, err
		}
		for _, u := range res.Users {
			if u, ok := u.(*tg.User); ok && strings.EqualFold(u.Username, name) {
				return u, nil
			}
		}
		return nil, calld.Errorf(calld.ENOTFOUND, "no user @%s", name)
	}
	id, err := strconv.ParseInt(peer, 10, 64)
	if err != nil {
		return nil, calld.Errorf(calld.EINVALID, "peer %q: want @username or a user id", peer)
	}
	users, err := c.API().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUser{UserID: id}})
	if tgerr.Is(err, "USER_ID_INVALID", "PEER_ID_INVALID") {
		return nil, calld.Errorf(calld.ENOTFOUND, "no user %d", id)
	}
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if u, ok := u.(*tg.User); ok && u.ID == id {
			return u, nil
		}
	}
	return nil, calld.Errorf(calld.ENOTFOUND, "no user %d", id)
}

// discardOf is the mtproto request for an fsm decision.
func discardOf(peer tg.InputPhoneCall, a fsm.SendDiscard) mtproto.Discard {
	return mtproto.Discard{
		Peer:         peer,
		Video:        a.Video,
		Duration:     int(a.Duration),
		Reason:       string(a.Reason),
		ConnectionID: a.ConnectionID,
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
