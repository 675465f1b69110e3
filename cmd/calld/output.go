package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/config"
)

// clientCmd holds what every client subcommand shares: its flag set and
// the common flags --socket, --config and --json.
type clientCmd struct {
	name     string
	synopsis string
	sio      stdio
	fs       *pflag.FlagSet
	socket   string
	account  string
	config   string
	json     bool
}

func newClientCmd(name, synopsis string, sio stdio) *clientCmd {
	c := newCmd(name, synopsis, sio)
	c.fs.StringVar(&c.socket, "socket", "", "control socket `PATH` (default $CALLD_SOCKET, else control.socket of the config, else "+config.DefaultSocket+")")
	c.fs.StringVar(&c.account, "account", "", accountUsage)
	if sio.declare {
		completeAccounts(sio.cmd, sio.getenv)
	}
	c.fs.StringVar(&c.config, "config", "", "configuration `FILE` to read control.socket from (default $CALLD_CONFIG)")
	c.fs.BoolVar(&c.json, "json", false, "print the API's JSON instead of a table")
	return c
}

// newConfigCmd is newCmd with the one flag --config (calld config ...).
func newConfigCmd(name, synopsis string, sio stdio) *clientCmd {
	c := newCmd(name, synopsis, sio)
	c.fs.StringVar(&c.config, "config", "", "configuration `FILE` (default $CALLD_CONFIG)")
	return c
}

// newCmd is a subcommand with no flag yet, on the command that sio
// declares or runs (cli.go). name is its path below calld ("status",
// "config check"); synopsis its arguments and flags.
func newCmd(name, synopsis string, sio stdio) *clientCmd {
	c := &clientCmd{name: name, synopsis: synopsis, sio: sio}
	if sio.declare {
		words := strings.Fields(name)
		sio.cmd.Use = strings.TrimSpace(words[len(words)-1] + " " + synopsis)
	}
	c.fs = sio.cmd.Flags()
	c.fs.SortFlags = false
	c.fs.Usage = func() {} // parse writes the usage
	return c
}

// errUsage marks a usage error (exit status 2) already reported.
var errUsage = errors.New("usage error")

// parse parses flags and positional arguments in any order (so that
// `calld show ID --json` works) and checks the number of positional
// arguments. A negative number is a positional argument (Telegram ids
// are signed), "--" ends the flags, and a long flag may be written with
// one dash (-json). On error it prints the reason and the usage and
// returns errUsage; for -h or --help it prints the help on stdout and
// returns pflag.ErrHelp. In declare mode it only records the arguments.
func (c *clientCmd) parse(args []string, minPos, maxPos int) ([]string, error) {
	if c.sio.declare {
		return nil, errDeclared
	}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case a == "-" || !strings.HasPrefix(a, "-") || negativeNumber.MatchString(a):
			pos = append(pos, a)
		default:
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			flags = append(flags, oneDashLong(c.fs, a))
			if hasValue {
				continue
			}
			f := c.fs.Lookup(name)
			if f == nil && len(name) == 1 {
				f = c.fs.ShorthandLookup(name)
			}
			if f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	c.sio.cmd.InitDefaultHelpFlag() // -h, --help: last, as cobra lists it
	if err := c.fs.Parse(flags); err != nil {
		fmt.Fprintf(c.sio.stderr, "calld %s: %v\n", c.name, err)
		writeUsage(c.sio.stderr, c.sio.cmd)
		return nil, errUsage
	}
	if help, _ := c.fs.GetBool("help"); help {
		c.sio.cmd.SetOut(c.sio.stdout)
		_ = c.sio.cmd.Help()
		return nil, pflag.ErrHelp
	}
	if len(pos) < minPos || len(pos) > maxPos {
		switch {
		case len(pos) > maxPos:
			fmt.Fprintf(c.sio.stderr, "calld %s: unexpected argument %q\n", c.name, pos[maxPos])
		default:
			fmt.Fprintf(c.sio.stderr, "calld %s: missing argument\n", c.name)
		}
		writeUsage(c.sio.stderr, c.sio.cmd)
		return nil, errUsage
	}
	return pos, nil
}

// oneDashLong returns arg, or --name for a long flag of fs written with
// one dash (-json, -config=FILE), as the flag package took it.
func oneDashLong(fs *pflag.FlagSet, arg string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(arg, "-"), "=")
	if strings.HasPrefix(arg, "-") && !strings.HasPrefix(arg, "--") && len(name) > 1 && fs.Lookup(name) != nil {
		return "-" + arg
	}
	return arg
}

var negativeNumber = regexp.MustCompile(`^-[0-9]+$`)

// usageError reports a bad argument and returns exit status 2.
func (c *clientCmd) usageError(format string, args ...any) int {
	fmt.Fprintf(c.sio.stderr, "calld %s: %s\n", c.name, fmt.Sprintf(format, args...))
	writeUsage(c.sio.stderr, c.sio.cmd)
	return 2
}

// parseStatus maps parse's error to an exit status.
func parseStatus(err error) int {
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	return 2
}

// client resolves the socket and returns a client, or an exit status
// (2 for a configuration error).
func (c *clientCmd) client() (*client.Client, int) {
	socket, err := resolveSocket(c.socket, c.account, c.config, c.sio.getenv)
	if err != nil {
		fmt.Fprintf(c.sio.stderr, "calld %s: %v\n", c.name, err)
		return nil, 2
	}
	return client.New(socket), 0
}

// resolveSocket: --socket, else --account (NAME.sock in the run
// directory, accountSocket), else $CALLD_ACCOUNT, else $CALLD_SOCKET, else
// control.socket of the configuration file (--config, else
// $CALLD_CONFIG), else the default. A flag beats every variable; --socket
// with --account, or $CALLD_SOCKET with $CALLD_ACCOUNT, name two sockets:
// an error.
func resolveSocket(flagSocket, flagAccount, flagConfig string, getenv func(string) string) (string, error) {
	switch {
	case flagSocket != "" && flagAccount != "":
		return "", fmt.Errorf("--socket and --account name two sockets: give one")
	case flagSocket != "":
		return flagSocket, nil
	case flagAccount != "":
		return accountSocket("--account", flagAccount, getenv)
	}
	socket, account := getenv(config.EnvSocket), getenv(envAccount)
	switch {
	case socket != "" && account != "":
		return "", fmt.Errorf("$%s and $%s name two sockets: unset one, or give --socket or --account", config.EnvSocket, envAccount)
	case account != "":
		return accountSocket("$"+envAccount, account, getenv)
	case socket != "":
		return socket, nil
	}
	path := config.Path(flagConfig, getenv)
	if path == "" {
		return config.DefaultSocket, nil
	}
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return "", fmt.Errorf("configuration: %w", err)
	}
	return cfg.Control.Socket, nil
}

// fail reports a failed operation (exit status 1): an API error as its
// code and message, anything else (the daemon is not running, ...) as is.
func (c *clientCmd) fail(err error) int {
	var ce *calld.Error
	if errors.As(err, &ce) {
		fmt.Fprintf(c.sio.stderr, "calld %s: %s: %s\n", c.name, ce.Code, ce.Message)
	} else {
		fmt.Fprintf(c.sio.stderr, "calld %s: %v\n", c.name, err)
	}
	return 1
}

// printRaw prints an API answer as it came, ending with one newline.
func printRaw(w io.Writer, data []byte) {
	data = bytes.TrimRight(data, "\n")
	w.Write(append(data, '\n'))
}

// decodeInto decodes an API answer.
func decodeInto(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding the daemon's answer: %w", err)
	}
	return nil
}

// parseCallID parses a call id argument.
func parseCallID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("call id %q is not a decimal 64-bit integer", s)
	}
	return id, nil
}

// fmtTime renders a time for people: RFC 3339 UTC to the second, "-" when
// absent.
func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

func fmtDuration(seconds int) string {
	return (time.Duration(seconds) * time.Second).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// peerName is the call's peer for people: @username when the daemon
// knows it, else the user id.
func peerName(c calld.Call) string {
	if c.PeerUsername != "" {
		return "@" + c.PeerUsername
	}
	return strconv.FormatInt(c.PeerID, 10)
}

// callSummary is the one-line answer of discard, call and accept.
func callSummary(c calld.Call) string {
	s := fmt.Sprintf("call %d (%s, peer %s): %s", c.ID, c.Direction, peerName(c), c.State)
	if c.State == calld.StateActive && c.ConnectionID != 0 {
		s += fmt.Sprintf(", connection %d", c.ConnectionID)
	}
	if c.State == calld.StateEnded {
		s += fmt.Sprintf(", reason %s, ended by %s, duration %s", orDash(string(c.Reason)), orDash(string(c.EndedBy)), fmtDuration(c.Duration))
	}
	if c.Error != "" {
		s += ", error " + c.Error
	}
	return s
}
