package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/calld/calld"
	"github.com/calld/calld/client"
	"github.com/calld/calld/internal/sim"
)

// readmeBlock is the fenced code block after the README's comment
// `<!-- e2e: NAME…`, one command a line.
func readmeBlock(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- e2e: "+name)
	if !ok {
		t.Fatalf("README.md has no <!-- e2e: %s --> block", name)
	}
	_, rest, _ = strings.Cut(rest, "```\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README.md: the %s block is not closed", name)
	}
	return strings.Split(strings.TrimSpace(block), "\n")
}

// bash runs one README line to its end and returns its output.
func bash(dir, line string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", line)
	cmd.Dir = dir
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, errOut.String())
	}
	return string(out), nil
}

// bashFirstLine runs a streaming README line (curl -N) until it has
// printed its first line, or ended, then stops it (its process group).
func bashFirstLine(dir, line string) (string, error) {
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	first := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- s
	}()
	var out string
	select {
	case out = <-first:
	case <-time.After(30 * time.Second):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if out == "" {
		return "", fmt.Errorf("no line within 30s")
	}
	return out, nil
}

// jsonValues checks that out is a sequence of JSON values (jq's output,
// an answer, NDJSON) and returns how many.
func jsonValues(out string) (int, error) {
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for dec.More() {
		var v any
		if err := dec.Decode(&v); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// TestReadmeExamples runs the README's `calld serve --sim` as written (no
// config: it picks a fresh directory and prints it), then each line of its
// curl block against that daemon and each jq line of its Monitoring block
// over that daemon's log lines. Each must exit 0 and print JSON (the
// Prometheus text for /metrics); the streaming curls (-N) are stopped
// after their first line. The placeholders are replaced and only them: S (the
// socket serve --sim printed), ID (a call placed to @alice, who answers),
// @username (@alice), and `journalctl -u calld -o cat [-f]` (the log lines).
func TestReadmeExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's examples need %s, not installed: %v", tool, err)
		}
	}
	sd := startSimNoConfig(t, t.TempDir())
	socket := filepath.Join(sd.dir, "calld.sock")
	cl := client.New(socket)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	placed, err := cl.Place(ctx, "@alice", false)
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, ctx, cl, placed.ID)

	work := t.TempDir() // the curl lines' working directory
	if err := os.WriteFile(filepath.Join(work, "engine-debug.json"), []byte(`{"engine":"e2e"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := readmeBlock(t, "curl")
	if lines[0] != "S=/run/calld.sock" {
		t.Fatalf("the curl block starts with %q, want S=/run/calld.sock", lines[0])
	}
	id := regexp.MustCompile(`\bID\b`)
	for _, line := range lines[1:] {
		cmd := "S=" + socket + "; " + id.ReplaceAllString(strings.ReplaceAll(line, "@username", "@alice"), fmt.Sprint(placed.ID))
		run := bash
		if strings.Contains(line, "-sN") {
			run = bashFirstLine
		}
		out, err := run(work, cmd)
		switch {
		case err != nil:
			t.Errorf("%s: %v", line, err)
		case strings.Contains(line, "/metrics"):
			if !strings.Contains(out, "# TYPE calld_calls_ended_total counter") {
				t.Errorf("%s: not the Prometheus text:\n%s", line, out)
			}
		default:
			if n, err := jsonValues(out); err != nil || n == 0 {
				t.Errorf("%s: %d JSON values, %v:\n%s", line, n, err, out)
			}
		}
	}
	checkReadmeJq(t, sd.logs.String())
}

// checkReadmeJq runs the Monitoring block's jq lines over logs: the
// ended calls are listed, and no discard failed on this clean run.
func checkReadmeJq(t *testing.T, logs string) {
	t.Helper()
	if n := len(readmeJq(t, logs, `"call.ended"`)); n == 0 {
		t.Errorf("the README's call.ended recipe: no line after the curl block's discard")
	}
	if out := readmeJq(t, logs, `"call.discard"`); len(out) != 0 {
		t.Errorf("the README's failed-discards recipe: %d on a clean run: %v", len(out), out)
	}
}

// readmeJq runs the Monitoring block's jq line that contains match over
// logs (in place of `journalctl -u calld -o cat [-f]`) and returns the
// JSON values it prints.
func readmeJq(t *testing.T, logs, match string) []map[string]any {
	t.Helper()
	file := filepath.Join(t.TempDir(), "calld.log")
	if err := os.WriteFile(file, []byte(logs), 0o600); err != nil {
		t.Fatal(err)
	}
	journal := regexp.MustCompile(`journalctl -u calld -o cat( -f)?`)
	for _, line := range readmeBlock(t, "jq") {
		if !strings.Contains(line, "| jq") || !strings.Contains(line, match) {
			continue
		}
		out, err := bash(t.TempDir(), journal.ReplaceAllString(line, "cat "+file))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		var values []map[string]any
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var v map[string]any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %v:\n%s", line, err, out)
			}
			values = append(values, v)
		}
		return values
	}
	t.Fatalf("the README's jq block has no jq line with %s", match)
	return nil
}

// TestReadmeFailedDiscardRecipe: the README's "discards that failed" jq
// recipe prints the discard Telegram refused, with its error as result.
func TestReadmeFailedDiscardRecipe(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skipf("the README's recipe needs jq, not installed: %v", err)
	}
	e := newEnv(t, sim.Options{Authorized: true}, "")
	d := e.start()
	alice := e.srv.AddPeer("alice")
	in, err := e.srv.IncomingCall(alice, false)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCall(in, calld.StateRinging)
	e.srv.FailRPC("phone.discardCall", tgerr.New(400, "CALL_PEER_INVALID"), 1)
	_, _, _ = e.cli("discard", fmt.Sprint(in))
	e.waitCall(in, calld.StateEnded)
	failed := readmeJq(t, d.logs.String(), `"call.discard"`)
	if len(failed) != 1 || failed[0]["result"] == "ok" || failed[0]["result"] == "sent" {
		t.Fatalf("failed discards: %v, want the one refused", failed)
	}
}

// waitActive polls the daemon until call id is active.
func waitActive(t *testing.T, ctx context.Context, cl *client.Client, id int64) {
	t.Helper()
	for {
		c, err := cl.Call(ctx, id)
		if err == nil && c.State == calld.StateActive {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("call %d not active: %v %v", id, c.State, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a separate process: nothing to inject
	}
}
