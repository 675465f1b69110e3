package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/calld/calld"
)

// runMedia is `calld media ID`: GET /v1/calls/{id}/media, what a media
// engine needs of an active call. The table leaves the secrets out (the
// key, peer tags, TURN credentials); --json prints them all.
func runMedia(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("media", "ID "+commonFlags, sio)
	return getCallResource(ctx, c, args, "/media", func(data []byte) error {
		var m calld.Media
		if err := decodeInto(data, &m); err != nil {
			return err
		}
		printMedia(sio, m)
		return nil
	})
}

// printMedia prints a call's media parameters without their secrets.
func printMedia(sio stdio, m calld.Media) {
	tw := tabwriter.NewWriter(sio.stdout, 0, 4, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(tw, "%s\t%v\n", name, v) }
	row("Key fingerprint", m.KeyFingerprint)
	row("Outgoing", yesNo(m.Outgoing))
	var proto []string
	if m.Protocol.UDPP2P {
		proto = append(proto, "udp_p2p")
	}
	if m.Protocol.UDPReflector {
		proto = append(proto, "udp_reflector")
	}
	proto = append(proto, fmt.Sprintf("layers %d..%d", m.Protocol.MinLayer, m.Protocol.MaxLayer),
		"library "+orDash(strings.Join(m.Protocol.LibraryVersions, " ")))
	row("Protocol", strings.Join(proto, ", "))
	if len(m.Connections) == 0 {
		row("Connections", "-")
	}
	for i, cn := range m.Connections {
		name := ""
		if i == 0 {
			name = "Connections"
		}
		row(name, connectionLine(cn.ID, cn.IP, cn.IPv6, cn.Port, mediaKinds(cn)))
	}
	tw.Flush()
}

func mediaKinds(cn calld.MediaConnection) string {
	var kinds []string
	for _, k := range []struct {
		on   bool
		name string
	}{{cn.TCP, "tcp"}, {cn.TURN, "turn"}, {cn.STUN, "stun"}} {
		if k.on {
			kinds = append(kinds, k.name)
		}
	}
	return strings.Join(kinds, " ")
}

// connectionLine is one relay for people: "ID IP [IPV6] port PORT".
func connectionLine(id int64, ip, ipv6 string, port int, kinds string) string {
	addr := ip
	if ipv6 != "" {
		addr += " [" + ipv6 + "]"
	}
	s := fmt.Sprintf("%d %s port %d", id, addr, port)
	if kinds != "" {
		s += " (" + kinds + ")"
	}
	return s
}

// runConnection is `calld connection ID CONN_ID`: POST
// /v1/calls/{id}/connection, the relay the media engine uses.
func runConnection(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("connection", "ID CONN_ID "+commonFlags, sio)
	pos, err := c.parse(args, 2, 2)
	if err != nil {
		return parseStatus(err)
	}
	id, err := parseCallID(pos[0])
	if err != nil {
		return c.usageError("%v", err)
	}
	conn, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil {
		return c.usageError("connection id %q is not a decimal 64-bit integer", pos[1])
	}
	return callAction(ctx, c, "/v1/calls/"+strconv.FormatInt(id, 10)+"/connection", calld.ConnectionRequest{ConnectionID: conn})
}
