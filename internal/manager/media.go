package manager

import (
	"github.com/gotd/td/tg"

	"github.com/calld/calld"
	"github.com/calld/calld/internal/config"
)

// This file is the media side of the manager (CONTRACT §5.5): the
// protocol offered per call; signaling.go relays the media engines'
// signaling, rating.go answers need_rating and need_debug.

// protocolFor is the configured protocol with the override's fields in
// place, validated like [media] (an invalid one is 400 invalid, naming
// the field).
func (m *Manager) protocolFor(o *calld.ProtocolOverride) (tg.PhoneCallProtocol, error) {
	p := m.cfg.Protocol
	if o == nil {
		return p, nil
	}
	p.LibraryVersions = append([]string(nil), p.LibraryVersions...)
	if o.LibraryVersions != nil {
		p.LibraryVersions = append([]string(nil), o.LibraryVersions...)
	}
	if o.MinLayer != nil {
		p.MinLayer = *o.MinLayer
	}
	if o.MaxLayer != nil {
		p.MaxLayer = *o.MaxLayer
	}
	if o.UDPP2P != nil {
		p.UDPP2P = *o.UDPP2P
	}
	if o.UDPReflector != nil {
		p.UDPReflector = *o.UDPReflector
	}
	if err := config.ValidateMedia(MediaConfig(p)); err != nil {
		return p, calld.Errorf(calld.EINVALID, "%v", err)
	}
	return p, nil
}

// Protocol is the phoneCallProtocol of a [media] table.
func Protocol(md config.Media) tg.PhoneCallProtocol {
	return tg.PhoneCallProtocol{
		UDPP2P:          md.UDPP2P,
		UDPReflector:    md.UDPReflector,
		MinLayer:        md.MinLayer,
		MaxLayer:        md.MaxLayer,
		LibraryVersions: append([]string(nil), md.LibraryVersions...),
	}
}

// MediaConfig is Protocol's inverse.
func MediaConfig(p tg.PhoneCallProtocol) config.Media {
	return config.Media{
		UDPP2P:          p.UDPP2P,
		UDPReflector:    p.UDPReflector,
		MinLayer:        p.MinLayer,
		MaxLayer:        p.MaxLayer,
		LibraryVersions: p.LibraryVersions,
	}
}
