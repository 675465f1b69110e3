package manager

import (
	"strings"
	"testing"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/mtproto"
)

// An invalid protocol override is invalid, and its message names the
// override's fields only (protocol.<field>), never [media]'s keys.
func TestProtocolOverrideNamesTheField(t *testing.T) {
	m := &Manager{cfg: Config{Protocol: mtproto.Protocol()}}
	i := func(v int) *int { return &v }
	f := false
	for _, tc := range []struct {
		name  string
		o     calld.ProtocolOverride
		field string
	}{
		{"no versions", calld.ProtocolOverride{LibraryVersions: []string{}}, "protocol.library_versions"},
		{"blank version", calld.ProtocolOverride{LibraryVersions: []string{"9.0.0", " "}}, "protocol.library_versions[1]"},
		{"min layer 0", calld.ProtocolOverride{MinLayer: i(0)}, "protocol.min_layer"},
		{"max below min", calld.ProtocolOverride{MaxLayer: i(10)}, "protocol.max_layer"},
		{"max below the override's min", calld.ProtocolOverride{MinLayer: i(92), MaxLayer: i(91)}, "protocol.max_layer"},
		{"no transport", calld.ProtocolOverride{UDPP2P: &f, UDPReflector: &f}, "protocol.udp_reflector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.protocolFor(&tc.o)
			if calld.ErrorCode(err) != calld.EINVALID || !strings.HasPrefix(calld.ErrorMessage(err), tc.field+":") {
				t.Fatalf("%v, want invalid naming %s", err, tc.field)
			}
			if strings.Contains(err.Error(), "media.") {
				t.Fatalf("%v names [media]'s key, not the override's field", err)
			}
		})
	}
}
