// Command calld is the Telegram call-state daemon and its client.
package main

import (
	"context"
	"os"
)

func main() {
	ctx := context.Background()
	if len(os.Args) > 1 && os.Args[1] == "demo" {
		os.Exit(runDemo(ctx, os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(runServe(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
