package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestContainerImage builds ../Containerfile with buildah (podman build
// reads the same file; docker build too) from a build context laid out as
// the repository root (dist/calld, the example config, the empty
// directory), in a store of its own under a temp dir, then checks the
// image's config and files, and runs `calld version` in it: with no libc
// in the image, that proves the binary static.
func TestContainerImage(t *testing.T) {
	need(t, "buildah")
	ctx := t.TempDir()
	for _, dir := range []string{"dist", "configs", "packaging/container/empty"} {
		if err := os.MkdirAll(filepath.Join(ctx, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := buildBinary(context.Background(), filepath.Join(ctx, "dist"), testVersion, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	// The README in the empty directory is there to be left out by
	// .dockerignore, as in the repository.
	for _, f := range []string{"configs/calld.toml", ".dockerignore", "packaging/container/empty/README"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctx, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	store := t.TempDir()
	buildah := func(args ...string) string {
		t.Helper()
		return run(t, "buildah", append([]string{"--root", filepath.Join(store, "root"),
			"--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs"}, args...)...)
	}
	const image = "localhost/calld-test"
	buildah("bud", "--isolation", "chroot", "-f", filepath.Join(repoRoot, "Containerfile"), "-t", image, ctx)
	t.Cleanup(func() { buildah("rmi", "--all", "--force") })

	var inspect struct {
		OCIv1 struct {
			Config struct {
				User       string
				Env        []string
				Entrypoint []string
				Volumes    map[string]struct{}
			}
		}
	}
	if err := json.Unmarshal([]byte(buildah("inspect", "--type", "image", image)), &inspect); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.OCIv1.Config
	if cfg.User != "65532:65532" {
		t.Errorf("User %q, want 65532:65532 (not root)", cfg.User)
	}
	if want := []string{"/usr/bin/calld", "serve", "--config", "/etc/calld/calld.toml"}; !reflect.DeepEqual(cfg.Entrypoint, want) {
		t.Errorf("Entrypoint %q, want %q", cfg.Entrypoint, want)
	}
	if _, ok := cfg.Volumes["/var/lib/calld"]; !ok || len(cfg.Volumes) != 1 {
		t.Errorf("Volumes %v, want /var/lib/calld (the state)", cfg.Volumes)
	}
	if !strings.Contains(strings.Join(cfg.Env, " "), "CALLD_SOCKET=/run/calld/calld.sock") {
		t.Errorf("Env %q lacks CALLD_SOCKET=/run/calld/calld.sock", cfg.Env)
	}

	ctr := strings.TrimSpace(buildah("from", image))
	mnt := strings.TrimSpace(buildah("mount", ctr))
	// The state and socket directories are the user's, their parents
	// root's; nothing else is in the image.
	want := map[string]string{
		".": "0 0", "etc": "0 0", "etc/calld": "0 0", "etc/calld/calld.toml": "0 0",
		"usr": "0 0", "usr/bin": "0 0", "usr/bin/calld": "0 0",
		"var": "0 0", "var/lib": "0 0", "var/lib/calld": "65532 65532",
		"run": "0 0", "run/calld": "65532 65532",
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "find", mnt, "-printf", "%P|%U %G\n")), "\n") {
		path, owner, _ := strings.Cut(line, "|")
		if path == "" {
			path = "."
		}
		got[path] = owner
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("image files (path: uid gid)\n got %v\nwant %v", got, want)
	}
	t.Run("serve --sim", func(t *testing.T) { serveImage(t, mnt, cfg.Env) })
	buildah("umount", ctr)
	out := buildah("run", "--isolation", "chroot", ctr, "--", "/usr/bin/calld", "version")
	if !strings.Contains(out, testVersion) {
		t.Errorf("calld version in the image: %q lacks %s", out, testVersion)
	}
	buildah("rm", ctr)
}

// serveImage runs the image's entrypoint with --sim in its root file
// system (mnt), as its user with its environment (chroot: no container
// runtime needed), waits for the daemon.ready log line, asks calld
// status through the socket in /run/calld, stops it with SIGTERM, and
// checks that the state file in the volume directory is the user's.
func serveImage(t *testing.T, mnt string, env []string) {
	need(t, "chroot")
	// A Unix socket's path holds at most 107 bytes: reach the image's
	// /run/calld through a short link.
	link := filepath.Join(t.TempDir(), "run")
	if err := os.Symlink(filepath.Join(mnt, "run/calld"), link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "chroot", "--userspec=65532:65532", mnt,
		"/usr/bin/calld", "serve", "--config", "/etc/calld/calld.toml", "--sim")
	srv.Env = env
	logs, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	ready := false
	sc := bufio.NewScanner(logs)
	for !ready && sc.Scan() {
		seen = append(seen, sc.Text())
		var line struct{ Event string }
		ready = json.Unmarshal(sc.Bytes(), &line) == nil && line.Event == "daemon.ready"
	}
	if !ready {
		srv.Process.Kill()
		srv.Wait()
		t.Fatalf("no daemon.ready line:\n%s", strings.Join(seen, "\n"))
	}
	go io.Copy(io.Discard, logs)
	calldStatus(t, ctx, filepath.Join(mnt, "usr/bin/calld"), filepath.Join(link, "calld.sock"))
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Error(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("calld serve in the image: %v", err)
	}
	if got := strings.TrimSpace(run(t, "stat", "-c", "%u:%g %a", filepath.Join(mnt, "var/lib/calld/calld.db"))); got != "65532:65532 600" {
		t.Errorf("the state file: %s, want 65532:65532 600", got)
	}
}
