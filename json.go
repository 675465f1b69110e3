package calld

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// This file writes the call record and the journal event as JSON without
// reflection: every committed step encodes them (CONTRACT §3's shapes),
// and encoding/json spent about a third of the loop's encoding time
// walking their struct fields. The output is byte for byte what
// encoding/json writes for the same values (json_test.go holds it equal
// to the reflective encoding, FuzzAppendJSON included). No library:
// zerolog's encoder is internal to it, and a code generator (easyjson) is
// a build step and a dependency for two small types.

// AppendJSON appends c's JSON (what MarshalJSON returns) to b.
func (c *Call) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendInt64String(b, c.ID)
	b = append(b, `,"access_hash":`...)
	b = appendInt64String(b, c.AccessHash)
	b = append(b, `,"direction":`...)
	b = appendString(b, string(c.Direction))
	b = append(b, `,"peer_id":`...)
	b = appendInt64String(b, c.PeerID)
	b = append(b, `,"state":`...)
	b = appendString(b, string(c.State))
	b = append(b, `,"video":`...)
	b = strconv.AppendBool(b, c.Video)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(c.Duration), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, string(c.Reason))
	b = append(b, `,"ended_by":`...)
	b = appendString(b, string(c.EndedBy))
	b = append(b, `,"connection_id":`...)
	b = appendInt64String(b, c.ConnectionID)
	b = append(b, `,"connections":`...)
	if c.Connections == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Connections {
			if i > 0 {
				b = append(b, ',')
			}
			b = c.Connections[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"need_rating":`...)
	b = strconv.AppendBool(b, c.NeedRating)
	b = append(b, `,"need_debug":`...)
	b = strconv.AppendBool(b, c.NeedDebug)
	b = append(b, `,"error":`...)
	b = appendString(b, c.Error)
	b = c.appendExtensions(b)
	// The times come last: MarshalJSON's outer fields, which replace the
	// record's own (encoding/json orders the shallower fields after the
	// embedded struct's).
	b = appendOptTime(b, `,"created_at":`, c.CreatedAt)
	b = appendOptTime(b, `,"ringing_at":`, c.RingingAt)
	b = appendOptTime(b, `,"active_at":`, c.ActiveAt)
	b = appendOptTime(b, `,"ended_at":`, c.EndedAt)
	b = appendOptTime(b, `,"deadline":`, c.Deadline)
	return append(b, '}')
}

// appendExtensions appends the fields after the CONTRACT's, each omitted
// when empty, except the deadline (a time).
func (c *Call) appendExtensions(b []byte) []byte {
	if c.Date != 0 {
		b = append(b, `,"date":`...)
		b = strconv.AppendInt(b, int64(c.Date), 10)
	}
	if c.PeerUsername != "" {
		b = append(b, `,"peer_username":`...)
		b = appendString(b, c.PeerUsername)
	}
	if c.AdminID != 0 {
		b = append(b, `,"admin_id":`...)
		b = appendInt64String(b, c.AdminID)
	}
	if c.ParticipantID != 0 {
		b = append(b, `,"participant_id":`...)
		b = appendInt64String(b, c.ParticipantID)
	}
	if c.RandomID != 0 {
		b = append(b, `,"random_id":`...)
		b = strconv.AppendInt(b, int64(c.RandomID), 10)
	}
	if c.LocalVideo {
		b = append(b, `,"local_video":true`...)
	}
	if c.DeadlineKind != "" {
		b = append(b, `,"deadline_kind":`...)
		b = appendString(b, c.DeadlineKind)
	}
	if c.HangupPending {
		b = append(b, `,"hangup_pending":true`...)
	}
	if c.PendingEndedBy != "" {
		b = append(b, `,"pending_ended_by":`...)
		b = appendString(b, string(c.PendingEndedBy))
	}
	return b
}

func (c *Connection) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendInt64String(b, c.ID)
	b = append(b, `,"ip":`...)
	b = appendString(b, c.IP)
	if c.IPv6 != "" {
		b = append(b, `,"ipv6":`...)
		b = appendString(b, c.IPv6)
	}
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(c.Port), 10)
	return append(b, '}')
}

// AppendJSON appends e's JSON (what MarshalJSON returns) to b.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"event":`...)
	b = appendString(b, e.Event)
	b = append(b, `,"call_id":`...)
	b = appendInt64String(b, e.CallID)
	b = append(b, `,"from":`...)
	b = appendString(b, e.From)
	b = append(b, `,"to":`...)
	b = appendString(b, e.To)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(e.Duration), 10)
	b = append(b, `,"at":`...)
	b = appendTime(b, e.At)
	return append(b, '}')
}

// appendInt64String writes v as the JSON string ",string" asks for.
func appendInt64String(b []byte, v int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, v, 10)
	return append(b, '"')
}

func appendOptTime(b []byte, key string, t *time.Time) []byte {
	if t == nil {
		return b
	}
	return appendTime(append(b, key...), *t)
}

// appendTime writes t as Time's MarshalText does, quoted. The layout's
// characters need no escaping.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as encoding/json does:
// '"' and '\\' escaped, control characters as \b \f \n \r \t or \u00XX,
// '<', '>' and '&' as \u003c \u003e \u0026 (its HTML-safe default),
// U+2028 and U+2029 escaped, each byte of invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
