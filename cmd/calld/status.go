package main

import (
	"context"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/calld/calld"
)

const commonFlags = "[--json] [--socket PATH | --account NAME] [--config FILE]"

// Exit statuses of `calld status` beyond 0 (healthy), 1 (the daemon
// cannot be reached or the request failed) and 2 (usage).
const exitUnhealthy = 3

// healthy is the rule of `calld status`'s exit status (and of GET
// /v1/health): ready, connected to Telegram and authorized.
func healthy(st calld.Status) bool {
	return st.Ready && st.Telegram.Connected && st.Telegram.Authorized
}

// runStatus is `calld status`: GET /v1/status. It exits 0 when the daemon
// is healthy, 3 when it answers but is not, 1 when it cannot be reached.
func runStatus(ctx context.Context, args []string, sio stdio) int {
	c := newClientCmd("status", commonFlags, sio)
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	cl, code := c.client()
	if cl == nil {
		return code
	}
	defer cl.Close()
	data, err := cl.Raw(ctx, http.MethodGet, "/v1/status", nil)
	if err != nil {
		return c.fail(err)
	}
	var st calld.Status
	if err := decodeInto(data, &st); err != nil {
		return c.fail(err)
	}
	code = 0
	if !healthy(st) {
		code = exitUnhealthy
	}
	if c.json {
		printRaw(sio.stdout, data)
		return code
	}
	tg := "disconnected"
	if st.Telegram.Connected {
		tg = "connected"
	}
	switch {
	case st.Telegram.Authorized:
		tg += fmt.Sprintf(", authorized as user %d", st.Telegram.SelfID)
	case st.State == "" || st.State == "not_logged_in":
		tg += ", not authorized (run calld login)"
	default:
		tg += ", authorization not known yet"
	}
	if st.Telegram.DC != 0 {
		tg += fmt.Sprintf(", DC %d", st.Telegram.DC)
	}
	date := "-"
	if st.Updates.Date != 0 {
		date = time.Unix(int64(st.Updates.Date), 0).UTC().Format(time.RFC3339)
	}
	tw := tabwriter.NewWriter(sio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Version\t%s\n", st.Version)
	if st.Account != "" {
		fmt.Fprintf(tw, "Account\t%s\n", st.Account)
	}
	fmt.Fprintf(tw, "Ready\t%s\n", yesNo(st.Ready))
	if st.Status != "" {
		fmt.Fprintf(tw, "State\t%s\n", st.Status)
	}
	fmt.Fprintf(tw, "Telegram\t%s\n", tg)
	fmt.Fprintf(tw, "Updates\tpts %d, qts %d, seq %d, date %s\n", st.Updates.Pts, st.Updates.Qts, st.Updates.Seq, date)
	fmt.Fprintf(tw, "Calls\t%d live, %d total\n", st.Calls.Live, st.Calls.Total)
	tw.Flush()
	return code
}
