package sim

import (
	"strings"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// handleLocked answers one decoded request. It runs under s.mu.
func (s *Server) handleLocked(rc *rpcCtx, obj bin.Object) (bin.Encoder, error) {
	switch r := obj.(type) {
	case *tg.HelpGetConfigRequest:
		return s.configLocked(), nil
	case *tg.HelpGetNearestDCRequest:
		return &tg.NearestDC{Country: "US", ThisDC: s.opts.DC, NearestDC: s.opts.DC}, nil
	case *tg.UsersGetUsersRequest:
		return rc.acct.getUsersLocked(r), nil
	case *tg.UsersGetFullUserRequest:
		return rc.acct.getFullUserLocked(r)
	case *tg.ContactsResolveUsernameRequest:
		return rc.acct.resolveUsernameLocked(r)
	case *tg.UpdatesGetStateRequest:
		st := rc.acct.tgStateLocked()
		return &st, nil
	case *tg.UpdatesGetDifferenceRequest:
		return &tg.UpdatesDifferenceBox{Difference: rc.acct.differenceLocked(r)}, nil
	case *tg.MessagesGetDhConfigRequest:
		return s.dhConfigLocked(r), nil

	// Login.
	case *tg.AuthSendCodeRequest:
		return s.sendCodeLocked(r)
	case *tg.AuthSignInRequest:
		return s.signInLocked(rc, r)
	case *tg.AccountGetPasswordRequest:
		return s.getPasswordLocked()
	case *tg.AuthCheckPasswordRequest:
		return s.checkPasswordLocked(rc, r)
	case *tg.AuthLogOutRequest:
		return s.logOutLocked(rc), nil

	// Calls.
	case *tg.PhoneRequestCallRequest:
		return s.requestCallLocked(rc, r)
	case *tg.PhoneReceivedCallRequest:
		return s.receivedCallLocked(rc, r)
	case *tg.PhoneAcceptCallRequest:
		return s.acceptCallLocked(rc, r)
	case *tg.PhoneConfirmCallRequest:
		return s.confirmCallLocked(rc, r)
	case *tg.PhoneDiscardCallRequest:
		return s.discardCallLocked(rc, r)
	case *tg.PhoneSetCallRatingRequest:
		return s.setCallRatingLocked(rc, r)
	case *tg.PhoneSaveCallDebugRequest:
		return s.saveCallDebugLocked(rc, r)
	case *tg.PhoneSendSignalingDataRequest:
		return s.sendSignalingDataLocked(rc, r)
	}
	return nil, tgerr.New(400, "INPUT_METHOD_INVALID")
}

// requests are the methods handleLocked answers, by constructor id: the
// only requests the server decodes (onMessage). Listing them, instead of
// taking gotd's tg.TypesConstructorMap, keeps the code of tg's ~2,000 other
// types out of every binary that links the simulator: calld's own does,
// for `serve --sim` and the demo, and carried them resident in memory.
var requests = map[uint32]func() bin.Object{
	tg.HelpGetConfigRequestTypeID:           newRequest[tg.HelpGetConfigRequest],
	tg.HelpGetNearestDCRequestTypeID:        newRequest[tg.HelpGetNearestDCRequest],
	tg.UsersGetUsersRequestTypeID:           newRequest[tg.UsersGetUsersRequest],
	tg.UsersGetFullUserRequestTypeID:        newRequest[tg.UsersGetFullUserRequest],
	tg.ContactsResolveUsernameRequestTypeID: newRequest[tg.ContactsResolveUsernameRequest],
	tg.UpdatesGetStateRequestTypeID:         newRequest[tg.UpdatesGetStateRequest],
	tg.UpdatesGetDifferenceRequestTypeID:    newRequest[tg.UpdatesGetDifferenceRequest],
	tg.MessagesGetDhConfigRequestTypeID:     newRequest[tg.MessagesGetDhConfigRequest],
	tg.AuthSendCodeRequestTypeID:            newRequest[tg.AuthSendCodeRequest],
	tg.AuthSignInRequestTypeID:              newRequest[tg.AuthSignInRequest],
	tg.AccountGetPasswordRequestTypeID:      newRequest[tg.AccountGetPasswordRequest],
	tg.AuthCheckPasswordRequestTypeID:       newRequest[tg.AuthCheckPasswordRequest],
	tg.AuthLogOutRequestTypeID:              newRequest[tg.AuthLogOutRequest],
	tg.PhoneRequestCallRequestTypeID:        newRequest[tg.PhoneRequestCallRequest],
	tg.PhoneReceivedCallRequestTypeID:       newRequest[tg.PhoneReceivedCallRequest],
	tg.PhoneAcceptCallRequestTypeID:         newRequest[tg.PhoneAcceptCallRequest],
	tg.PhoneConfirmCallRequestTypeID:        newRequest[tg.PhoneConfirmCallRequest],
	tg.PhoneDiscardCallRequestTypeID:        newRequest[tg.PhoneDiscardCallRequest],
	tg.PhoneSetCallRatingRequestTypeID:      newRequest[tg.PhoneSetCallRatingRequest],
	tg.PhoneSaveCallDebugRequestTypeID:      newRequest[tg.PhoneSaveCallDebugRequest],
	tg.PhoneSendSignalingDataRequestTypeID:  newRequest[tg.PhoneSendSignalingDataRequest],
}

// newRequest is a request's constructor for requests.
func newRequest[T any, P interface {
	*T
	bin.Object
}]() bin.Object {
	return P(new(T))
}

// getUsersLocked answers users.getUsers; Telegram leaves unknown users
// out.
func (a *Account) getUsersLocked(r *tg.UsersGetUsersRequest) vector {
	out := vector{}
	for _, in := range r.ID {
		id, err := a.resolveInputUserLocked(in)
		if err != nil {
			continue
		}
		out = append(out, a.usersLocked(id)[0])
	}
	return out
}

func (a *Account) getFullUserLocked(r *tg.UsersGetFullUserRequest) (bin.Encoder, error) {
	id, err := a.resolveInputUserLocked(r.ID)
	if err != nil {
		return nil, err
	}
	return &tg.UsersUserFull{
		FullUser: tg.UserFull{ID: id, Settings: tg.PeerSettings{}, NotifySettings: tg.PeerNotifySettings{}, PhoneCallsAvailable: true, VideoCallsAvailable: true},
		Chats:    []tg.ChatClass{},
		Users:    a.usersLocked(id),
	}, nil
}

func (a *Account) resolveUsernameLocked(r *tg.ContactsResolveUsernameRequest) (bin.Encoder, error) {
	id, ok := a.s.state.byName[strings.ToLower(strings.TrimPrefix(r.Username, "@"))]
	if !ok {
		return nil, tgerr.New(400, "USERNAME_NOT_OCCUPIED")
	}
	return &tg.ContactsResolvedPeer{
		Peer:  &tg.PeerUser{UserID: id},
		Chats: []tg.ChatClass{},
		Users: a.usersLocked(id),
	}, nil
}

func (s *Server) logOutLocked(rc *rpcCtx) *tg.AuthLoggedOut {
	delete(s.state.loggedIn, rc.keyID)
	delete(s.state.needPassword, rc.keyID)
	return &tg.AuthLoggedOut{}
}

func (s *Server) configLocked() *tg.Config {
	date := s.dateLocked()
	return &tg.Config{
		Date:                    date,
		Expires:                 date + 3600,
		ThisDC:                  s.opts.DC,
		DCOptions:               []tg.DCOption{s.dcOption()},
		DCTxtDomainName:         "sim.invalid",
		ChatSizeMax:             200,
		MegagroupSizeMax:        200000,
		ForwardedCountMax:       100,
		OnlineUpdatePeriodMs:    210000,
		OfflineBlurTimeoutMs:    5000,
		OfflineIdleTimeoutMs:    30000,
		OnlineCloudTimeoutMs:    300000,
		NotifyCloudDelayMs:      30000,
		NotifyDefaultDelayMs:    1500,
		PushChatPeriodMs:        60000,
		PushChatLimit:           2,
		EditTimeLimit:           172800,
		RevokeTimeLimit:         2147483647,
		RevokePmTimeLimit:       2147483647,
		RatingEDecay:            2419200,
		StickersRecentLimit:     200,
		ChannelsReadMediaPeriod: 604800,
		CallReceiveTimeoutMs:    int(s.opts.ReceiveTimeout.Milliseconds()),
		CallRingTimeoutMs:       int(s.opts.RingTimeout.Milliseconds()),
		CallConnectTimeoutMs:    30000,
		CallPacketTimeoutMs:     10000,
		MeURLPrefix:             "https://t.me/",
		CaptionLengthMax:        1024,
		MessageLengthMax:        4096,
		WebfileDCID:             s.opts.DC,
	}
}
