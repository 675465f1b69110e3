package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/config"
)

// Many accounts (CONTRACT §5.6): calld@NAME.service serves
// $CALLD_RUN_DIR/NAME.sock (calld@.socket's ListenStream=), and the CLI
// finds it by the account's name.
const (
	envAccount    = "CALLD_ACCOUNT" // the account --account defaults to
	envRunDir     = "CALLD_RUN_DIR" // where the accounts' sockets are
	defaultRunDir = "/run/calld"
	accountUsage  = "the account `NAME`: the socket $" + envRunDir + "/NAME.sock (default $" + envAccount + "; " +
		"$" + envRunDir + " defaults to " + defaultRunDir + "); not with --socket"
	// accountTimeout bounds each daemon's answer to `calld accounts`.
	accountTimeout = 5 * time.Second
)

// runDir is $CALLD_RUN_DIR, else /run/calld.
func runDir(getenv func(string) string) string {
	if d := getenv(envRunDir); d != "" {
		return d
	}
	return defaultRunDir
}

// accountSocket is the socket of account name (from, the flag or the
// variable it came from, names it in the error).
func accountSocket(from, name string, getenv func(string) string) (string, error) {
	if err := config.CheckAccount(name); err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	return filepath.Join(runDir(getenv), name+".sock"), nil
}

// accountSockets lists the *.sock files of the run directory, sorted; a
// directory that does not exist holds none.
func accountSockets(getenv func(string) string) ([]string, error) {
	dir := runDir(getenv)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sock") && e.Type()&os.ModeSocket != 0 {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// accountNames are the names of the sockets in the run directory that
// start with prefix: what --account completes to.
func accountNames(getenv func(string) string, prefix string) []cobra.Completion {
	sockets, _ := accountSockets(getenv)
	var names []cobra.Completion
	for _, s := range sockets {
		if name := strings.TrimSuffix(filepath.Base(s), ".sock"); strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}

// completeAccounts completes a client command's --account NAME (and
// --account=NAME) from the sockets. Cobra leaves the values of a command
// that parses its own flags to its ValidArgsFunction, which sees every
// argument.
func completeAccounts(cmd *cobra.Command, getenv func(string) string) {
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if prefix, ok := strings.CutPrefix(toComplete, "--account="); ok {
			names := accountNames(getenv, prefix)
			for i := range names {
				names[i] = "--account=" + names[i]
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		}
		if len(args) > 0 && args[len(args)-1] == "--account" {
			return accountNames(getenv, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveDefault
	}
}

// accountFlag declares --account on the root command, for its help and
// completion (`calld --account NAME COMMAND`); the client commands parse
// it themselves (newClientCmd), before or after the command: cobra hands
// them every argument. A local flag of the root, not a persistent one:
// serve, demo and config do not take it.
func accountFlag(root *cobra.Command, getenv func(string) string) {
	root.Flags().String("account", "", accountUsage)
	_ = root.RegisterFlagCompletionFunc("account", func(_ *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return accountNames(getenv, prefix), cobra.ShellCompDirectiveNoFileComp
	})
}

// accountRow is one row of `calld accounts` (an element of --json's
// array): the daemon's account ([telegram] account, else the socket's
// name), its socket and, when it answered, its /v1/status; else why not.
type accountRow struct {
	Account   string        `json:"account"`
	Socket    string        `json:"socket"`
	Answering bool          `json:"answering"`
	Status    *calld.Status `json:"status,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// runAccounts is `calld accounts [--json]`: every daemon whose socket is
// in $CALLD_RUN_DIR (default /run/calld), asked for its status at once.
// Exit status 0 when every daemon answered, 3 when one did not (its row
// says why), 1 when the directory cannot be read.
func runAccounts(ctx context.Context, args []string, sio stdio) int {
	c := newCmd("accounts", "[--json]", sio)
	c.fs.BoolVar(&c.json, "json", false, "print a JSON array, one object per socket (account, socket, answering, status or error)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	sockets, err := accountSockets(sio.getenv)
	if err != nil {
		return c.fail(err)
	}
	rows := make([]accountRow, len(sockets))
	var wg sync.WaitGroup
	for i, socket := range sockets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[i] = askAccount(ctx, socket)
		}()
	}
	wg.Wait()
	code := 0
	for _, r := range rows {
		if !r.Answering {
			code = exitUnhealthy
		}
	}
	if c.json {
		if rows == nil {
			rows = []accountRow{}
		}
		data, _ := json.Marshal(rows)
		printRaw(sio.stdout, data)
		return code
	}
	printAccounts(sio, rows)
	return code
}

// askAccount asks the daemon at socket for its status.
func askAccount(ctx context.Context, socket string) accountRow {
	row := accountRow{Account: strings.TrimSuffix(filepath.Base(socket), ".sock"), Socket: socket}
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	cl := client.New(socket)
	defer cl.Close()
	data, err := cl.Raw(ctx, http.MethodGet, "/v1/status", nil)
	var st calld.Status
	if err == nil {
		err = decodeInto(data, &st)
	}
	if err != nil {
		row.Error = notAnswering(err)
		return row
	}
	row.Answering, row.Status = true, &st
	if st.Account != "" {
		row.Account = st.Account
	}
	return row
}

// notAnswering says in a few words why a daemon did not answer.
func notAnswering(err error) string {
	var errno syscall.Errno
	var ce *calld.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", accountTimeout)
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &ce):
		return ce.Code + ": " + ce.Message
	}
	return err.Error()
}

// printAccounts prints the table of `calld accounts`.
func printAccounts(sio stdio, rows []accountRow) {
	tw := tabwriter.NewWriter(sio.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tSOCKET\tTELEGRAM\tAUTHORIZED\tLIVE")
	for _, r := range rows {
		if !r.Answering {
			fmt.Fprintf(tw, "%s\t%s\tnot answering: %s\t-\t-\n", r.Account, r.Socket, r.Error)
			continue
		}
		tg := "disconnected"
		if r.Status.Telegram.Connected {
			tg = "connected"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Account, r.Socket, tg, yesNo(r.Status.Telegram.Authorized),
			strconv.Itoa(r.Status.Calls.Live))
	}
	tw.Flush()
}
