// Command packaging builds calld's Debian package: run in this directory,
//
//	go run . [-version 1.2.3] [-arch amd64] [-o ../dist]
//
// builds a static calld (CGO_ENABLED=0) and, with nfpm as a library, the
// .deb that nfpm.yaml describes, both into the output directory, and
// prints the package's path. The same binary goes into the container
// image (../Containerfile).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	version := flag.String("version", "0.0.0~dev", "package and binary `version` (Debian's syntax: it starts with a digit)")
	arch := flag.String("arch", runtime.GOARCH, "GOARCH to build for")
	out := flag.String("o", "../dist", "output `directory`")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err := buildBinary(context.Background(), *out, *version, *arch)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pkg, err := buildDeb("nfpm.yaml", bin, *version, *arch, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(pkg)
}
