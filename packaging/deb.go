package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

// repoRoot is the calld module's directory, relative to this one.
const repoRoot = ".."

// buildBinary builds a static calld (CGO_ENABLED=0, as the container
// image needs too) for goarch into dir, with its version set, and
// returns its path.
func buildBinary(ctx context.Context, dir, version, goarch string) (string, error) {
	bin, err := filepath.Abs(filepath.Join(dir, "calld"))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/calld/calld/internal/buildinfo.version="+version, "-o", bin, "./cmd/calld")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/calld: %w\n%s", err, out)
	}
	return bin, nil
}

// buildDocs writes the man pages (gzipped, into dir/man) and the bash,
// zsh and fish completions that calld generates from its command
// definitions into dir, running binary (or, when it is built for another
// GOARCH, a calld built for this machine).
func buildDocs(ctx context.Context, binary, goarch, dir string) error {
	if goarch != runtime.GOARCH {
		host, err := buildBinary(ctx, filepath.Join(dir, "host"), "0", runtime.GOARCH)
		if err != nil {
			return err
		}
		binary = host
	}
	man := filepath.Join(dir, "man")
	if out, err := exec.CommandContext(ctx, binary, "man", man).CombinedOutput(); err != nil {
		return fmt.Errorf("calld man: %w\n%s", err, out)
	}
	pages, err := filepath.Glob(filepath.Join(man, "*.1"))
	if err != nil || len(pages) == 0 {
		return fmt.Errorf("calld man wrote no pages into %s (%v)", man, err)
	}
	for _, page := range pages {
		if err := gzipFile(page); err != nil {
			return err
		}
	}
	for shell, name := range map[string]string{"bash": "calld.bash", "zsh": "_calld", "fish": "calld.fish"} {
		out, err := exec.CommandContext(ctx, binary, "completion", shell).Output()
		if err != nil {
			return fmt.Errorf("calld completion %s: %w", shell, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzipFile replaces path by path.gz, with no name or time in the header
// (reproducible, as dh_compress does with gzip -n).
func gzipFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path+".gz", buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(path)
}

// buildDeb writes the .deb that config (nfpm.yaml) describes into dir,
// with binary as /usr/bin/calld and its man pages and completions, and
// returns its path. Relative paths in config are relative to config's
// directory; a variable config names other than CALLD_VERSION,
// CALLD_BINARY and CALLD_DOCS is an error.
func buildDeb(config, binary, version, goarch, dir string) (string, error) {
	docs := filepath.Join(dir, "docs")
	if err := buildDocs(context.Background(), binary, goarch, docs); err != nil {
		return "", err
	}
	vars := map[string]string{"CALLD_VERSION": version, "CALLD_BINARY": binary, "CALLD_DOCS": docs}
	unknown := map[string]bool{}
	cfg, err := nfpm.ParseFileWithEnvMapping(config, func(name string) string {
		v, ok := vars[name]
		if !ok {
			unknown[name] = true
		}
		return v
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", config, err)
	}
	// nfpm itself asks for its signing passphrases: not ours to set.
	for _, name := range []string{"NFPM_PASSPHRASE", "NFPM_DEB_PASSPHRASE", "NFPM_RPM_PASSPHRASE", "NFPM_APK_PASSPHRASE", "NFPM_MSIX_PASSPHRASE"} {
		delete(unknown, name)
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(unknown))
		for n := range unknown {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("%s: unknown variables %v", config, names)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info.Arch = goarch
	info = nfpm.WithDefaults(info)
	base := filepath.Dir(config)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for _, c := range info.Contents {
		rel(&c.Source)
	}
	rel(&info.Scripts.PreInstall)
	rel(&info.Scripts.PostInstall)
	rel(&info.Scripts.PreRemove)
	rel(&info.Scripts.PostRemove)

	target := filepath.Join(dir, deb.Default.ConventionalFileName(info))
	f, err := os.Create(target)
	if err != nil {
		return "", err
	}
	info.Target = target
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return "", fmt.Errorf("nfpm: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", errors.Join(err, os.Remove(target))
	}
	return target, nil
}
