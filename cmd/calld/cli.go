package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// The command tree is github.com/spf13/cobra's (docs/architecture.md,
// Decisions): one definition gives the help of every command (-h, --help
// and `calld help CMD` alike), the shell completions and the man pages.
//
// Each client command is a function that declares its flags and
// arguments on the command's pflag set (newClientCmd, c.parse) and then
// runs. The tree is built by calling each one in declare mode (it stops
// at c.parse, having declared); a run calls it again on a reset flag set,
// and c.parse parses for real. Cobra does not parse the client commands'
// flags itself (DisableFlagParsing): c.parse keeps what the commands
// always accepted, flags anywhere among the arguments, negative numbers
// (Telegram ids) as arguments and -json as well as --json.

// usage writes every command's usage: the synopsis as written in the
// command's Use, then its commands (under their groups' titles when the
// command has groups) and its flags. It is a function rather than a cobra
// usage template on purpose: text/template calls methods by name through
// reflection, and a binary that links it keeps every exported method of
// every type it uses, which kept all of gotd's tg package (its ~2,000
// types' encoders, decoders and getters) in calld's binary and in its
// resident memory (docs/performance.md).
func usage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("usage: " + c.UseLine())
	if c.HasAvailableSubCommands() {
		listed := func(sub *cobra.Command, group string) {
			if (sub.IsAvailableCommand() || sub.Name() == "help") && (group == "" || sub.GroupID == group) {
				fmt.Fprintf(&b, "\n  %-*s %s", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
		if len(c.Groups()) == 0 {
			b.WriteString("\n\nCommands:")
			for _, sub := range c.Commands() {
				listed(sub, "")
			}
		}
		for _, g := range c.Groups() {
			b.WriteString("\n\n" + g.Title)
			for _, sub := range c.Commands() {
				listed(sub, g.ID)
			}
		}
	}
	if c.HasAvailableLocalFlags() {
		b.WriteString("\n\nFlags:\n" + strings.TrimRightFunc(c.LocalFlags().FlagUsages(), unicode.IsSpace))
	}
	b.WriteString("\n")
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
}

const rootLong = `calld tracks a Telegram account's 1:1 calls: the daemon (calld serve) and
the client of its control socket (every other command).

The socket is --socket, else --account NAME ($CALLD_RUN_DIR/NAME.sock,
$CALLD_RUN_DIR defaulting to /run/calld: the socket of calld@NAME.service),
else $CALLD_ACCOUNT, else $CALLD_SOCKET, else control.socket of --config (or
$CALLD_CONFIG), else /run/calld.sock. --socket with --account (or
$CALLD_SOCKET with $CALLD_ACCOUNT) is a usage error.
Exit status: 0 success, 1 the operation failed, 2 usage error; calld status
exits 3 when the daemon answers but is not healthy, calld accounts when a
daemon does not answer.
Run 'calld help COMMAND' or 'calld COMMAND -h' for a command's flags.`

// The commands are listed in the order newRoot adds them (by use), not
// sorted by name.
func init() { cobra.EnableCommandSorting = false }

// newRoot builds the command tree for one run: ctx and sio are what the
// commands run with, and *code receives the exit status.
func newRoot(ctx context.Context, sio stdio, code *int) *cobra.Command {
	root := &cobra.Command{
		Use:               "calld COMMAND [flags] [args]",
		Short:             "the Telegram call-state daemon and its client",
		Long:              rootLong,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		// No command at all is a usage error.
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(sio.stderr, cmd.UsageString())
			*code = 2
			return nil
		},
	}
	root.DisableFlagsInUseLine = true
	root.SetIn(sio.stdin)
	root.SetOut(sio.stdout)
	root.SetErr(sio.stderr)
	root.SetUsageFunc(usage)
	accountFlag(root, sio.getenv)
	root.AddGroup(&cobra.Group{ID: "daemon", Title: "The daemon:"},
		&cobra.Group{ID: "client", Title: "Clients of the running daemon:"},
		&cobra.Group{ID: "tools", Title: "Configuration and shell:"})
	root.SetHelpCommandGroupID("tools")
	root.AddCommand(serveCommand(ctx, sio, code), demoCommand(ctx, sio, code))
	for _, name := range commandOrder {
		root.AddCommand(clientCommand(ctx, name, commands[name], sio, code))
	}
	root.AddCommand(configCommand(ctx, sio, code), completionCommand(root, sio, code), manCommand(root, sio, code))
	return root
}

// leaf returns a command with the settings every command shares.
func leaf(use, short, group string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, GroupID: group, SilenceErrors: true, SilenceUsage: true}
	cmd.DisableFlagsInUseLine = true
	return cmd
}

// clientCommand declares a client command (see the top of this file).
func clientCommand(ctx context.Context, name string, c command, sio stdio, code *int) *cobra.Command {
	cmd := leaf(name, c.summary, "client")
	cmd.DisableFlagParsing = true
	declare := sio
	declare.cmd, declare.declare = cmd, true
	c.run(ctx, nil, declare)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.ResetFlags()
		s := sio
		s.cmd = cmd
		*code = c.run(cmd.Context(), args, s)
		return nil
	}
	return cmd
}

// configCommand is `calld config check|default`.
func configCommand(ctx context.Context, sio stdio, code *int) *cobra.Command {
	cmd := leaf("config check|default", "check or print the configuration", "tools")
	// Without a known subcommand: a usage error.
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			fmt.Fprintf(sio.stderr, "calld config: unknown config command %q\n", args[0])
		}
		fmt.Fprint(sio.stderr, cmd.UsageString())
		*code = 2
		return nil
	}
	for _, sub := range []command{
		{runConfigCheck, "validate a configuration file: exit 0, or 2 naming the key and line"},
		{runConfigDefault, "print the fully commented default configuration"},
	} {
		child := clientCommand(ctx, "", sub, sio, code)
		child.GroupID = ""
		cmd.AddCommand(child)
	}
	return cmd
}

// completionCommand is `calld completion bash|zsh|fish`.
func completionCommand(root *cobra.Command, sio stdio, code *int) *cobra.Command {
	cmd := leaf("completion bash|zsh|fish", "print the shell completion script", "tools")
	cmd.Long = `Prints the completion script for the shell. For example:
  bash:  calld completion bash > /etc/bash_completion.d/calld
  zsh:   calld completion zsh > "${fpath[1]}/_calld"
  fish:  calld completion fish > ~/.config/fish/completions/calld.fish`
	cmd.ValidArgs = []string{"bash", "zsh", "fish"}
	cmd.Args = cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		var err error
		switch args[0] {
		case "bash":
			err = root.GenBashCompletionV2(sio.stdout, true)
		case "zsh":
			err = root.GenZshCompletion(sio.stdout)
		case "fish":
			err = root.GenFishCompletion(sio.stdout, true)
		}
		if err != nil {
			fmt.Fprintf(sio.stderr, "calld completion: %v\n", err)
			*code = 1
		}
		return nil
	}
	return cmd
}

// manCommand is the hidden `calld man DIR`: the man pages (calld.1,
// calld-status.1, ...) from the same definitions, for the packages.
func manCommand(root *cobra.Command, sio stdio, code *int) *cobra.Command {
	cmd := leaf("man DIR", "write the man pages into DIR", "")
	cmd.Hidden = true
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		root.DisableAutoGenTag = true
		header := &doc.GenManHeader{Title: "CALLD", Section: "1", Source: "calld " + currentBuild().Version, Manual: "calld manual"}
		err := os.MkdirAll(args[0], 0o755)
		if err == nil {
			err = doc.GenManTree(root, header, args[0])
		}
		if err != nil {
			fmt.Fprintf(sio.stderr, "calld man: %v\n", err)
			*code = 1
		}
		return nil
	}
	return cmd
}

// run dispatches args (without the program name) and returns the exit
// status: 0 success, 1 the operation failed, 2 usage error.
func run(ctx context.Context, args []string, sio stdio) int {
	code := 0
	root := newRoot(ctx, sio, &code)
	if len(args) > 0 {
		switch args[0] {
		case "--version", "-version":
			args = append([]string{"version"}, args[1:]...)
		case "-help":
			args = append([]string{"--help"}, args[1:]...)
		}
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		fmt.Fprintf(sio.stderr, "calld: %v\n\n", err)
		if cmd == nil {
			cmd = root
		}
		fmt.Fprint(sio.stderr, cmd.UsageString())
		return 2
	}
	return code
}

// errDeclared ends a command called in declare mode, at c.parse.
var errDeclared = errors.New("declared")

// writeUsage writes a command's usage.
func writeUsage(w io.Writer, cmd *cobra.Command) {
	fmt.Fprint(w, strings.TrimRight(cmd.UsageString(), "\n")+"\n")
}
