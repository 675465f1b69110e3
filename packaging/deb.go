package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// buildDeb writes the .deb that config (nfpm.yaml) describes into dir,
// with binary as /usr/bin/calld, and returns its path. Relative paths in
// config are relative to config's directory; a variable config names
// other than CALLD_VERSION and CALLD_BINARY is an error.
func buildDeb(config, binary, version, goarch, dir string) (string, error) {
	vars := map[string]string{"CALLD_VERSION": version, "CALLD_BINARY": binary}
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
