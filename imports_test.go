package calld_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is calld's module path.
const module = "github.com/calld/calld"

// layers is the allowed import table of calld's own packages (paths
// relative to the module; "" is the root). A package imports only calld
// packages of a strictly lower layer: the arrows point one way, down to
// the domain at the root. A package not named here is in the room of its
// nearest named parent folder (internal/mtproto/x is in internal/mtproto's
// layer) and a package may import the packages of its own folder below
// it; a package with no named parent must be given a layer here.
var layers = map[string]int{
	// The domain: Call, Event, Status, Media, the login state, the error
	// codes, the service interfaces. It imports no calld package.
	"": 0,

	// Leaves: they import the root at most.
	"client":             1, // the public Go client of the control API
	"internal/logging":   1, // the log schema and its event names
	"internal/gotdrace":  1,
	"internal/group":     1, // goroutine owners (an errgroup that waits)
	"internal/leaktest":  1, // the goroutine-leak check of every package's tests
	"internal/testclock": 1, // the fake clock of the tests of timer loops
	"internal/buildinfo": 1, // calld's version, for `calld version` and the daemon
	"configs":            1, // the example calld.toml, embedded (calld config default)
	"internal/metrics":   1, // the Prometheus metrics, on the daemon's own registry
	"internal/config":    2,
	// The call key exchange: pure, so the middlewares below mtproto can
	// class its errors.
	"internal/mtproto/callkey": 2,

	// The core and its adapters: the machine, the sequence engine, bbolt,
	// gotd, systemd, the simulated Telegram.
	"internal/fsm":     3,
	"internal/updates": 3,
	"internal/store":   3,
	"internal/mtproto": 3,
	"internal/systemd": 3,
	"internal/sim":     3,

	// The single writer: it implements calld.CallService.
	"internal/manager": 4,
	// The control server: it serves a calld.CallService.
	"internal/control": 5,
	// The wiring.
	"internal/daemon": 6,
	"internal/demo":   7,

	// Binaries, benchmarks, examples and the tests that run the binary.
	"internal/reliability": 8,
	"cmd/calld":            8,
	"bench":                8,
	"examples/mediaengine": 8,
	"e2e":                  8,
}

// forbidden are imports the layers would allow but the design does not:
// the control server knows the domain, not how the manager keeps it.
var forbidden = map[string][]string{
	"internal/control": {"internal/store", "internal/fsm", "internal/mtproto", "internal/updates", "internal/manager"},
}

// publicOnly are packages that may import only calld's public packages:
// the client, and the examples (written as a user of calld would).
var publicOnly = []string{"client", "examples/mediaengine"}

// thin are packages that must link neither bbolt nor any gotd package (the
// CLI's client and what a user's program links through it).
var thin = []string{"", "client"}

// heavy are the module path prefixes a thin package must not link.
var heavy = []string{"go.etcd.io/bbolt", "github.com/gotd/"}

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// listPackages runs go list -deps -json over the module and returns
// calld's own packages by their path relative to the module.
func listPackages(t *testing.T) map[string]listedPackage {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the import table needs the go command: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "-json=ImportPath,Imports,Deps", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list's output: %v", err)
		}
		if rel, ok := relative(p.ImportPath); ok {
			pkgs[rel] = p
		}
	}
	if len(pkgs) < len(layers)/2 {
		t.Fatalf("go list found only %d calld packages", len(pkgs))
	}
	return pkgs
}

// relative returns path relative to the module, and whether it is one of
// calld's packages.
func relative(path string) (string, bool) {
	if path == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// layerOf returns the layer of rel's nearest named folder (rel itself
// first), that folder, and whether there is one.
func layerOf(rel string) (layer int, room string, ok bool) {
	for room = rel; ; {
		if layer, ok = layers[room]; ok {
			return layer, room, true
		}
		i := strings.LastIndex(room, "/")
		if room == "" || i < 0 {
			return 0, "", false
		}
		room = room[:i]
	}
}

func name(rel string) string {
	if rel == "" {
		return "calld (the root)"
	}
	return rel
}

// TestImportTable holds every calld package to the layers, the forbidden
// imports and the public-only rule (non-test imports).
func TestImportTable(t *testing.T) {
	pkgs := listPackages(t)
	for rel, p := range pkgs {
		layer, room, ok := layerOf(rel)
		if !ok {
			t.Errorf("%s is not in the import table: give it a layer in imports_test.go", name(rel))
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := relative(imp)
			if !ok {
				continue
			}
			depLayer, depRoom, known := layerOf(dep)
			switch {
			case !known:
				t.Errorf("%s imports %s, which is not in the import table", name(rel), name(dep))
			case depRoom == room && strings.HasPrefix(dep, rel+"/"):
				// A package of its own folder, below it.
			case depLayer >= layer:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports point down only", name(rel), layer, name(dep), depLayer)
			}
			if slices.Contains(forbidden[room], depRoom) {
				t.Errorf("%s imports %s, which it must not", name(rel), name(dep))
			}
			if slices.Contains(publicOnly, room) && (dep == "internal" || strings.HasPrefix(dep, "internal/")) {
				t.Errorf("%s imports %s: it may import only calld's public packages", name(rel), name(dep))
			}
		}
	}
	for rel := range layers {
		if _, ok := pkgs[rel]; !ok {
			t.Errorf("the import table names %s, which go list does not know", name(rel))
		}
	}
}

// TestThinPackagesLinkNoBboltNorGotd checks what the root and the client
// link: neither bbolt nor gotd (go list -deps).
func TestThinPackagesLinkNoBboltNorGotd(t *testing.T) {
	pkgs := listPackages(t)
	for _, rel := range thin {
		p, ok := pkgs[rel]
		if !ok {
			t.Errorf("%s: no such package", name(rel))
			continue
		}
		for _, dep := range p.Deps {
			for _, h := range heavy {
				if strings.HasPrefix(dep, h) {
					t.Errorf("%s links %s", name(rel), dep)
				}
			}
		}
	}
}
