package calld

// Media is the shape of GET /v1/calls/{id}/media: the secret material a
// media engine needs once the call is active. Key and PeerTag are encoded
// as standard base64 by encoding/json.
type Media struct {
	Key            []byte            `json:"key"`
	KeyFingerprint int64             `json:"key_fingerprint,string"`
	Outgoing       bool              `json:"outgoing"`
	Protocol       Protocol          `json:"protocol"`
	Connections    []MediaConnection `json:"connections"`
}

// Protocol is the call's negotiated phoneCallProtocol.
type Protocol struct {
	UDPP2P          bool     `json:"udp_p2p"`
	UDPReflector    bool     `json:"udp_reflector"`
	MinLayer        int      `json:"min_layer"`
	MaxLayer        int      `json:"max_layer"`
	LibraryVersions []string `json:"library_versions"`
}

// ProtocolOverride is the "protocol" of POST /v1/calls and .../accept:
// the fields given replace those of the configured [media] protocol for
// this call; the fields left out keep the configured values.
type ProtocolOverride struct {
	UDPP2P          *bool    `json:"udp_p2p,omitempty"`
	UDPReflector    *bool    `json:"udp_reflector,omitempty"`
	MinLayer        *int     `json:"min_layer,omitempty"`
	MaxLayer        *int     `json:"max_layer,omitempty"`
	LibraryVersions []string `json:"library_versions,omitempty"`
}

// MediaConnection is one relay with its secret parts (phoneConnection or
// phoneConnectionWebrtc).
type MediaConnection struct {
	ID       int64  `json:"id,string"`
	IP       string `json:"ip"`
	IPv6     string `json:"ipv6"`
	Port     int    `json:"port"`
	PeerTag  []byte `json:"peer_tag"`
	TCP      bool   `json:"tcp"`
	TURN     bool   `json:"turn"`
	STUN     bool   `json:"stun"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// SignalingPayload is one line of GET /v1/calls/{id}/signaling: Data is
// standard base64 in JSON.
type SignalingPayload struct {
	Seq  uint64 `json:"seq"`
	Data []byte `json:"data"`
}
