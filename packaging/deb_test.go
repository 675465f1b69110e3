package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testVersion is the version the test builds the binary and the package
// with: `calld version` must print it.
const testVersion = "0.0.0~test"

// shipped is every file of the .deb: its mode and owner as `dpkg-deb -c`
// prints them, and the repository file it must equal ("" for the
// binary). Directories are not listed; anything else in the package is
// an error.
var shipped = map[string]struct {
	mode, owner, src string
}{
	"/usr/bin/calld":                         {"-rwxr-xr-x", "root/root", ""},
	"/usr/lib/systemd/system/calld.service":  {"-rw-r--r--", "root/root", "../configs/calld.service"},
	"/usr/lib/systemd/system/calld.socket":   {"-rw-r--r--", "root/root", "../configs/calld.socket"},
	"/usr/lib/systemd/system/calld@.service": {"-rw-r--r--", "root/root", "../configs/calld@.service"},
	"/usr/lib/systemd/system/calld@.socket":  {"-rw-r--r--", "root/root", "../configs/calld@.socket"},
	"/usr/lib/sysusers.d/calld.conf":         {"-rw-r--r--", "root/root", "../configs/sysusers.d/calld.conf"},
	"/usr/lib/tmpfiles.d/calld.conf":         {"-rw-r--r--", "root/root", "../configs/tmpfiles.d/calld.conf"},
	// 0640: it holds api_hash; postinst's systemd-tmpfiles gives it to
	// group calld, which does not exist yet when dpkg unpacks it.
	"/etc/calld/calld.toml": {"-rw-r-----", "root/root", "../configs/calld.toml"},
}

// conffile is the one file dpkg must keep the admin's edits of.
const conffile = "/etc/calld/calld.toml"

// need skips the test when tool is not installed (a machine with Go
// only); CI runs here, where it is.
func need(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not found (apt-get install %s): not checked here", tool, map[string]string{
			"dpkg-deb": "dpkg", "dpkg": "dpkg", "systemd-analyze": "systemd",
			"setpriv": "util-linux", "chroot": "coreutils",
			"podman": "podman", "buildah": "buildah",
		}[tool])
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildAll builds the static binary and the .deb into a temp dir; the
// first run compiles calld and nfpm (minutes on 2 cores), later ones
// come from the build cache (seconds).
func buildAll(t *testing.T) (bin, deb string) {
	t.Helper()
	dir := t.TempDir()
	bin, err := buildBinary(context.Background(), dir, testVersion, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	deb, err = buildDeb("nfpm.yaml", bin, testVersion, runtime.GOARCH, dir)
	if err != nil {
		t.Fatal(err)
	}
	return bin, deb
}

// TestDeb builds the package, lists it, extracts it into a temp root,
// runs the extracted calld and verifies the extracted units.
func TestDeb(t *testing.T) {
	_, deb := buildAll(t)
	need(t, "dpkg-deb")

	t.Run("contents", func(t *testing.T) {
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
			// drwxr-xr-x root/root 0 2026-01-01 00:00 ./usr/bin/
			f := strings.Fields(line)
			if len(f) != 6 {
				t.Errorf("dpkg-deb -c: %q: want 6 fields", line)
				continue
			}
			path := strings.TrimPrefix(f[5], ".")
			if f[0][0] == 'd' {
				if f[1] != "root/root" || f[0] != "drwxr-xr-x" {
					t.Errorf("%s: %s %s, want drwxr-xr-x root/root", path, f[0], f[1])
				}
				continue
			}
			want, ok := shipped[path]
			if !ok {
				t.Errorf("%s: not expected in the package", path)
				continue
			}
			seen[path] = true
			if f[0] != want.mode || f[1] != want.owner {
				t.Errorf("%s: %s %s, want %s %s", path, f[0], f[1], want.mode, want.owner)
			}
		}
		for path := range shipped {
			if !seen[path] {
				t.Errorf("%s: missing from the package", path)
			}
		}
	})

	t.Run("control", func(t *testing.T) {
		ctl := t.TempDir()
		run(t, "dpkg-deb", "-e", deb, ctl)
		if got, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(got)) != conffile {
			t.Errorf("conffiles = %q, want %s", got, conffile)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			fi, err := os.Stat(filepath.Join(ctl, s))
			if err != nil {
				t.Error(err)
				continue
			}
			if fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: mode %v, want 0755", s, fi.Mode().Perm())
			}
			run(t, "sh", "-n", filepath.Join(ctl, s))
		}
		fields := run(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture")
		for _, want := range []string{"Package: calld", "Version: " + testVersion} {
			if !strings.Contains(fields, want) {
				t.Errorf("control fields %q lack %q", fields, want)
			}
		}
	})

	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)

	t.Run("files equal the repository's", func(t *testing.T) {
		for path, f := range shipped {
			if f.src == "" {
				continue
			}
			want, err := os.ReadFile(f.src)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(root, path)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (%v)", path, f.src, err)
			}
		}
	})

	t.Run("calld version", func(t *testing.T) {
		out := run(t, filepath.Join(root, "usr/bin/calld"), "version", "--json")
		var v struct{ Version string }
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version != testVersion {
			t.Errorf("calld version --json = %s (%v), want version %s", out, err, testVersion)
		}
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		need(t, "systemd-analyze")
		verifyUnits(t, root)
	})
}

// verifyUnits runs systemd-analyze verify on the units extracted into
// root. `verify --root=` would look for everything under root, the
// host's sysinit.target and /bin/kill too, so the units are copied with
// ExecStart='s binary moved under root instead: verify then checks that
// the extracted binary is there and executable, and the rest as shipped.
// Any message (an unknown key or system call group is only a warning,
// exit status 0) fails.
func verifyUnits(t *testing.T, root string) {
	t.Helper()
	const bin = "/usr/bin/calld"
	dir := t.TempDir()
	var units []string
	for path := range shipped {
		if filepath.Dir(path) != "/usr/lib/systemd/system" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if strings.HasSuffix(path, ".service") {
			if n := strings.Count(text, "\nExecStart="+bin+" "); n != 1 {
				t.Fatalf("%s: %d ExecStart=%s lines, want 1", path, n, bin)
			}
			for _, key := range []string{"ExecStart", "ExecReload"} {
				text = strings.ReplaceAll(text, "\n"+key+"="+bin+" ", "\n"+key+"="+filepath.Join(root, bin)+" ")
			}
		}
		name := filepath.Join(dir, filepath.Base(path))
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, name)
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDebInstall is the real round trip, run when CALLD_PKG_INSTALL=1
// (as root, on a machine where installing calld is fine): dpkg -i, the
// installed calld serving --sim as user calld from the installed config
// on a socket passed the way calld.socket passes it, dpkg -r, dpkg
// --purge, and what is left.
func TestDebInstall(t *testing.T) {
	if os.Getenv("CALLD_PKG_INSTALL") != "1" {
		t.Skip("CALLD_PKG_INSTALL=1 runs the dpkg -i / serve / dpkg --purge round trip on this machine")
	}
	if os.Geteuid() != 0 {
		t.Fatal("CALLD_PKG_INSTALL=1 needs root")
	}
	for _, tool := range []string{"dpkg", "setpriv"} {
		need(t, tool)
	}
	if exec.Command("dpkg", "-s", "calld").Run() == nil {
		t.Fatal("calld is installed already: not touching it")
	}
	_, deb := buildAll(t)
	purged := false
	t.Cleanup(func() {
		if !purged {
			exec.Command("dpkg", "--purge", "calld").Run()
		}
	})
	run(t, "dpkg", "-i", deb)
	run(t, "dpkg", "-i", deb) // an upgrade (same version): postinst with $2 set

	// postinst: the user and group exist, the config is root:calld 0640.
	run(t, "getent", "passwd", "calld")
	run(t, "getent", "group", "calld")
	if got := strings.TrimSpace(run(t, "stat", "-c", "%a %U:%G", conffile)); got != "640 root:calld" {
		t.Errorf("%s: %s, want 640 root:calld", conffile, got)
	}

	t.Run("serve", func(t *testing.T) { serveInstalled(t) })

	// The admin enables the units (systemctl works without a running
	// systemd: links only); purge must take the links away.
	enabled := []string{"calld.socket", "calld.service", "calld@work.socket", "calld@work.service"}
	const wants = "/etc/systemd/system/sockets.target.wants/calld@work.socket"
	systemctl := false
	if _, err := exec.LookPath("systemctl"); err == nil {
		run(t, "systemctl", append([]string{"enable"}, enabled...)...)
		systemctl = true
	}

	run(t, "dpkg", "-r", "calld")
	for path := range shipped {
		_, err := os.Stat(path)
		if gone := errors.Is(err, os.ErrNotExist); gone == (path == conffile) {
			t.Errorf("after dpkg -r: %s: %v (only the conffile stays)", path, err)
		}
	}
	if _, err := os.Lstat(wants); systemctl && err != nil {
		t.Errorf("after dpkg -r: the enablement is kept for a re-install: %v", err)
	}
	// A re-install after a removal: the units must start again, not be
	// masked (/dev/null links in /etc/systemd/system).
	run(t, "dpkg", "-i", deb)
	for _, unit := range []string{"calld.service", "calld.socket"} {
		if dest, err := os.Readlink(filepath.Join("/etc/systemd/system", unit)); err == nil {
			t.Errorf("after dpkg -r and dpkg -i: %s links to %s", unit, dest)
		}
	}
	run(t, "dpkg", "--purge", "calld")
	purged = true
	for _, path := range append([]string{"/etc/calld", "/var/lib/calld", "/run/calld.sock"}, keys(shipped)...) {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after dpkg --purge: %s is left (%v)", path, err)
		}
	}
	// deb-systemd-helper's state and masks, enablement links.
	dirs := []string{}
	for _, d := range []string{"/etc/systemd", "/var/lib/systemd"} {
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) > 0 {
		if left := run(t, "find", append(dirs, "-name", "*calld*")...); left != "" {
			t.Errorf("after dpkg --purge, left:\n%s", left)
		}
	}
	// Debian keeps system users and groups: files may still be theirs.
	run(t, "getent", "passwd", "calld")
}

// serveInstalled runs the installed calld as systemd runs calld.service
// from calld.socket: as user calld, the state directory made as
// StateDirectory= makes it, the socket bound and listening before calld
// starts and passed as fd 3 with LISTEN_FDS=1 and LISTEN_PID (sh sets
// it to its own pid, which exec keeps). `calld status` may connect at
// once: the kernel queues the connection until calld serves. --sim: no
// credentials needed.
func serveInstalled(t *testing.T) {
	const socket = "/run/calld.sock"
	run(t, "install", "-d", "-m", "0700", "-o", "calld", "-g", "calld", "/var/lib/calld")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	// What RemoveOnStop=yes does: the socket is systemd's, not calld's.
	defer os.Remove(socket)
	defer l.Close()
	run(t, "chgrp", "calld", socket)
	run(t, "chmod", "0660", socket)
	fd, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logs bytes.Buffer
	srv := exec.CommandContext(ctx, "sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"`, "sh",
		"setpriv", "--reuid=calld", "--regid=calld", "--init-groups", "--",
		"/usr/bin/calld", "serve", "--sim", "--config", conffile)
	srv.ExtraFiles = []*os.File{fd}
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	calldStatus(t, ctx, "/usr/bin/calld", socket)
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Error(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("calld serve: %v", err)
	}
	if _, err := os.Stat("/var/lib/calld/calld.db"); err != nil {
		t.Errorf("the state file: %v", err)
	}
	if t.Failed() {
		t.Logf("calld serve's output:\n%s", logs.String())
	}
}

// calldStatus runs `bin status --json` on socket and fails unless the
// daemon answers: exit status 3 (it answers, not healthy yet: still
// connecting to the simulator) is an answer too.
func calldStatus(t *testing.T, ctx context.Context, bin, socket string) {
	t.Helper()
	status := exec.CommandContext(ctx, bin, "status", "--json", "--socket", socket)
	out, err := status.Output()
	var st map[string]any
	if jerr := json.Unmarshal(out, &st); jerr != nil || (err != nil && status.ProcessState.ExitCode() != 3) {
		t.Errorf("calld status: %v, %v: %s", err, jerr, out)
	}
	t.Logf("calld status (exit %d): %s", status.ProcessState.ExitCode(), out)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
