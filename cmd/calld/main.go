package main

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/gotd/td/telegram"
	_ "github.com/gotd/td/telegram/updates"
	_ "github.com/gotd/td/tgtest"
	_ "github.com/looplab/fsm"
	_ "github.com/rs/zerolog"
	_ "go.etcd.io/bbolt"
)

func main() {}
