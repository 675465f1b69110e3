package mtproto

import "testing"

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+15551234567", "+1555*****67"},
		{"15551234567", "1555*****67"},
		{"+44 20 7946 0958", "+4420******58"},
		{"+1234", "+**34"},
		{"12", "**"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
