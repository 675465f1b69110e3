package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/calld/calld/configs"
	"github.com/calld/calld/internal/config"
	"github.com/calld/calld/internal/daemon"
)

// runConfigCheck is `calld config check [--config FILE]`: what `calld
// serve` checks of its configuration before it starts (and on SIGHUP)
// without starting: the file (--config, else $CALLD_CONFIG) with the
// environment's overrides, and the public keys file it names. For
// ExecReload= and CI.
func runConfigCheck(_ context.Context, args []string, sio stdio) int {
	c := newConfigCmd("config check", "[--config FILE]", sio)
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	path := config.Path(c.config, sio.getenv)
	if path == "" {
		return c.usageError("no configuration file: give --config FILE or set $%s", config.EnvConfig)
	}
	cfg, err := config.Load(path, sio.getenv)
	if err == nil {
		err = daemon.New(cfg).CheckConfig()
	}
	if err != nil {
		// Name the file, unless the error does or is about the
		// environment (a key without a dot: CALLD_API_ID).
		var ce *config.Error
		if !errors.As(err, &ce) || ce.File == "" && strings.Contains(ce.Key, ".") {
			err = fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(sio.stderr, "calld config check: %v\n", err)
		return 2
	}
	if cfg.Telegram.Account != "" {
		fmt.Fprintf(sio.stdout, "%s: ok (account %s)\n", path, cfg.Telegram.Account)
		return 0
	}
	fmt.Fprintf(sio.stdout, "%s: ok\n", path)
	return 0
}

// runConfigDefault is `calld config default`: configs/calld.toml, every
// key at its default with its comment.
func runConfigDefault(_ context.Context, args []string, sio stdio) int {
	c := newConfigCmd("config default", "", sio)
	if _, err := c.parse(args, 0, 0); err != nil {
		return parseStatus(err)
	}
	sio.stdout.Write(configs.Example)
	return 0
}
