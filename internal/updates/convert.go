package updates

import "github.com/gotd/td/tg"

// shortMessage turns an updateShortMessage into the updateNewMessage it
// stands for: a private message whose peer is the other user, sent by that
// user unless it is outgoing.
func shortMessage(u *tg.UpdateShortMessage) *tg.UpdateNewMessage {
	msg := &tg.Message{
		ID:      u.ID,
		PeerID:  &tg.PeerUser{UserID: u.UserID},
		Message: u.Message,
		Date:    u.Date,
	}
	msg.SetOut(u.Out)
	msg.SetMentioned(u.Mentioned)
	msg.SetMediaUnread(u.MediaUnread)
	msg.SetSilent(u.Silent)
	if !u.Out {
		msg.SetFromID(&tg.PeerUser{UserID: u.UserID})
	}
	copyOptional(msg, u)
	return &tg.UpdateNewMessage{Message: msg, Pts: u.Pts, PtsCount: u.PtsCount}
}

// shortChatMessage turns an updateShortChatMessage into the updateNewMessage
// it stands for: a basic-group message from FromID.
func shortChatMessage(u *tg.UpdateShortChatMessage) *tg.UpdateNewMessage {
	msg := &tg.Message{
		ID:      u.ID,
		PeerID:  &tg.PeerChat{ChatID: u.ChatID},
		Message: u.Message,
		Date:    u.Date,
	}
	msg.SetOut(u.Out)
	msg.SetMentioned(u.Mentioned)
	msg.SetMediaUnread(u.MediaUnread)
	msg.SetSilent(u.Silent)
	msg.SetFromID(&tg.PeerUser{UserID: u.FromID})
	copyOptional(msg, u)
	return &tg.UpdateNewMessage{Message: msg, Pts: u.Pts, PtsCount: u.PtsCount}
}

// shortSentMessage turns the updateShortSentMessage result of our own send
// into an updateNewMessage. It only carries what the server returned (no
// peer, no text), so the engine uses it for pts bookkeeping and never
// dispatches it.
func shortSentMessage(u *tg.UpdateShortSentMessage) *tg.UpdateNewMessage {
	msg := &tg.Message{ID: u.ID, Date: u.Date}
	msg.SetOut(u.Out)
	if v, ok := u.GetMedia(); ok {
		msg.SetMedia(v)
	}
	if v, ok := u.GetEntities(); ok {
		msg.SetEntities(v)
	}
	if v, ok := u.GetTTLPeriod(); ok {
		msg.SetTTLPeriod(v)
	}
	return &tg.UpdateNewMessage{Message: msg, Pts: u.Pts, PtsCount: u.PtsCount}
}

// shortOptional is what updateShortMessage and updateShortChatMessage
// share of a message's optional fields.
type shortOptional interface {
	GetFwdFrom() (tg.MessageFwdHeader, bool)
	GetViaBotID() (int64, bool)
	GetReplyTo() (tg.MessageReplyHeaderClass, bool)
	GetEntities() ([]tg.MessageEntityClass, bool)
	GetTTLPeriod() (int, bool)
}

// copyOptional sets on msg the optional fields u carries.
func copyOptional(msg *tg.Message, u shortOptional) {
	if v, ok := u.GetFwdFrom(); ok {
		msg.SetFwdFrom(v)
	}
	if v, ok := u.GetViaBotID(); ok {
		msg.SetViaBotID(v)
	}
	if v, ok := u.GetReplyTo(); ok {
		msg.SetReplyTo(v)
	}
	if v, ok := u.GetEntities(); ok {
		msg.SetEntities(v)
	}
	if v, ok := u.GetTTLPeriod(); ok {
		msg.SetTTLPeriod(v)
	}
}
