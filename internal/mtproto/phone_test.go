package mtproto

import (
	"testing"

	"github.com/gotd/td/tg"
)

func TestDiscardReason(t *testing.T) {
	tests := []struct {
		in   string
		want tg.PhoneCallDiscardReasonClass
	}{
		{"missed", &tg.PhoneCallDiscardReasonMissed{}},
		{"busy", &tg.PhoneCallDiscardReasonBusy{}},
		{"hangup", &tg.PhoneCallDiscardReasonHangup{}},
		{"disconnect", &tg.PhoneCallDiscardReasonDisconnect{}},
		{"auto", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := discardReason(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("discardReason(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.TypeID() != tt.want.TypeID() {
			t.Errorf("discardReason(%q) = %v, %v", tt.in, got, err)
		}
	}
}
