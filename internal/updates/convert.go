// shortMessage, shortChatMessage and copyOptional are adapted from gotd's
// unexported convertShortMessage, convertShortChatMessage and
// convertOptional (github.com/gotd/td v0.93.0,
// telegram/updates/conv_shorts.go), which gotd does not export. They
// return the updateNewMessage alone rather than in an updateShort, set no
// sender on our own private messages (gotd sets the self id, which the
// engine does not know), and read the optional fields through one
// interface. gotd's licence:
//
// MIT License
//
// Copyright (c) 2020 Aleksandr Razumov
//
// Permission is hereby granted, free of charge, to any person obtaining a copy
// of this software and associated documentation files (the "Software"), to deal
// in the Software without restriction, including without limitation the rights
// to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
// copies of the Software, and to permit persons to whom the Software is
// furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in all
// copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
// IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
// FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
// AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
// LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
// OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
// SOFTWARE.

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
