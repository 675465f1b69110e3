package chartest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/calld/calld/internal/config"
)

// checkSecretRefs: CALLD_API_ID and CALLD_API_HASH (calld's environment
// overrides of telegram.api_id and api_hash) come from the Secret's keys.
func checkSecretRefs(t *testing.T, c corev1.Container, secret, idKey, hashKey string) {
	t.Helper()
	want := map[string]string{config.EnvAPIID: idKey, config.EnvAPIHash: hashKey}
	for _, e := range c.Env {
		key, ok := want[e.Name]
		if !ok {
			continue
		}
		delete(want, e.Name)
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != secret || e.ValueFrom.SecretKeyRef.Key != key {
			t.Errorf("%s: %+v; want Secret %s key %s", e.Name, e.ValueFrom, secret, key)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing environment %v", want)
	}
}

// checkMetrics: a container port named metrics, and the scrape
// annotations naming it.
func checkMetrics(t *testing.T, sts *appsv1.StatefulSet, c corev1.Container, port int32) {
	t.Helper()
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != port {
		t.Errorf("%s: ports %+v; want metrics %d", sts.Name, c.Ports, port)
	}
	a := sts.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != itoa(int64(port)) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: annotations %v; want prometheus.io/scrape, port %d, path /metrics", sts.Name, a, port)
	}
}

// loadConfig loads a rendered calld.toml with calld's own config package
// (what `calld serve --config` does), the credentials from the
// environment as in the pod.
func loadConfig(t *testing.T, toml string) config.Config {
	t.Helper()
	if toml == "" {
		t.Fatal("no calld.toml rendered")
	}
	path := filepath.Join(t.TempDir(), "calld.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{config.EnvAPIID: "12345678", config.EnvAPIHash: "0123456789abcdef0123456789abcdef"}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err == nil {
		err = cfg.Validate(false)
	}
	if err != nil {
		t.Fatalf("calld rejects the rendered config: %v\n%s", err, toml)
	}
	return cfg
}

// checkConfig: the account's name, the state on the claim's volume, the
// socket in the emptyDir where the CLI (CALLD_SOCKET) looks, the metrics
// listen address.
func checkConfig(t *testing.T, cfg config.Config, account string, c corev1.Container, listen string) {
	t.Helper()
	if cfg.Telegram.Account != account {
		t.Errorf("telegram.account %q; want %q", cfg.Telegram.Account, account)
	}
	if filepath.Dir(cfg.State.Path) != stateDir {
		t.Errorf("state.path %q is not on the volume at %s", cfg.State.Path, stateDir)
	}
	if filepath.Dir(cfg.Control.Socket) != runDir {
		t.Errorf("control.socket %q is not in the emptyDir at %s", cfg.Control.Socket, runDir)
	}
	socketEnv := ""
	for _, e := range c.Env {
		if e.Name == config.EnvSocket {
			socketEnv = e.Value
		}
	}
	if socketEnv != cfg.Control.Socket {
		t.Errorf("%s=%q; the daemon serves %q", config.EnvSocket, socketEnv, cfg.Control.Socket)
	}
	if cfg.Metrics.Listen != listen {
		t.Errorf("metrics.listen %q; want %q", cfg.Metrics.Listen, listen)
	}
	if cfg.Telegram.APIID != 12345678 {
		t.Errorf("telegram.api_id %d: not the environment's", cfg.Telegram.APIID)
	}
}

// checkOverrides: bob's own config, resources and volume size apply to
// bob only, over the chart's config (which alice keeps), and a changed
// config changes the pod's checksum annotation (so an upgrade restarts it).
func checkOverrides(t *testing.T, bob, alice *appsv1.StatefulSet, bobCfg, aliceCfg config.Config) {
	t.Helper()
	if bobCfg.Policy.Incoming != "reject" || aliceCfg.Policy.Incoming != "ring" {
		t.Errorf("policy.incoming: bob %q, alice %q; want reject, ring", bobCfg.Policy.Incoming, aliceCfg.Policy.Incoming)
	}
	for _, cfg := range []config.Config{bobCfg, aliceCfg} {
		if len(cfg.Telegram.DCOptions) != 1 || cfg.Telegram.DCOptions[0].Addr != "149.154.167.50:443" ||
			strings.Join(cfg.Media.LibraryVersions, ",") != "4.0.0,5.0.0" || cfg.Log.Format != "json" {
			t.Errorf("%s: the chart's config did not reach it: %+v", cfg.Telegram.Account, cfg)
		}
	}
	mem := func(sts *appsv1.StatefulSet) string {
		q := sts.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory]
		return q.String()
	}
	if mem(bob) != "48Mi" || mem(alice) != "32Mi" {
		t.Errorf("memory requests: bob %s, alice %s; want 48Mi, 32Mi", mem(bob), mem(alice))
	}
	size := func(sts *appsv1.StatefulSet) resource.Quantity {
		return sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	}
	if b, a := size(bob), size(alice); b.String() != "1Gi" || a.String() != "256Mi" {
		t.Errorf("storage: bob %s, alice %s; want 1Gi, 256Mi", b.String(), a.String())
	}
	if bob.Spec.Template.Annotations["checksum/config"] == alice.Spec.Template.Annotations["checksum/config"] {
		t.Error("bob and alice have the same config checksum")
	}
}

// TestBadValues: values that cannot make a working release fail the
// rendering with a message naming what is wrong.
func TestBadValues(t *testing.T) {
	creds := map[string]any{"existingSecret": "telegram-app"}
	accounts := func(a ...any) map[string]any { return map[string]any{"accounts": a, "apiCredentials": creds} }
	name := func(n string) map[string]any { return map[string]any{"name": n} }
	for _, tc := range []struct {
		what string
		vals map[string]any
		want string
	}{
		{"no accounts", map[string]any{"apiCredentials": creds}, "accounts is empty"},
		{"empty accounts", accounts(), "accounts is empty"},
		{"upper case", accounts(name("Alice")), `accounts[0].name "Alice" is not a DNS label`},
		{"underscore", accounts(name("a"), name("bad_name")), `accounts[1].name "bad_name" is not a DNS label`},
		{"trailing dash", accounts(name("alice-")), "is not a DNS label"},
		{"no name", accounts(map[string]any{"config": map[string]any{}}), `accounts[0].name "" is not a DNS label`},
		{"a bare string", accounts("alice"), "accounts[0] is not a map"},
		{"too long", accounts(name(strings.Repeat("a", 50))), "longer than 52 characters"},
		{"twice", accounts(name("alice"), name("alice")), `accounts[1].name "alice" appears twice`},
		{"api_hash in config", map[string]any{"accounts": []any{name("a")}, "apiCredentials": creds,
			"config": map[string]any{"telegram": map[string]any{"api_hash": "x"}}}, "come from apiCredentials"},
		{"api_id in an account's config", accounts(map[string]any{"name": "a",
			"config": map[string]any{"telegram": map[string]any{"api_id": 1}}}), "accounts[0].config.telegram: api_id"},
		{"no credentials", map[string]any{"accounts": []any{name("a")}}, "apiCredentials: set existingSecret"},
		{"apiId without apiHash", map[string]any{"accounts": []any{name("a")},
			"apiCredentials": map[string]any{"apiId": 1}}, "apiCredentials: set existingSecret"},
		{"config not a table", map[string]any{"accounts": []any{name("a")}, "apiCredentials": creds,
			"config": map[string]any{"dc": 2}}, "config.dc is not a table"},
		{"null key", map[string]any{"accounts": []any{name("a")}, "apiCredentials": creds,
			"config": map[string]any{"policy": map[string]any{"incoming": nil}}}, "a key without a value"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, err := render("calld", tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestNumbersAsFloats: values that reach the chart as float64 (helm
// --set-json, or a YAML reader that makes every number one) are still
// written as integers: calld's integer keys refuse 4.0, and the Secret
// would hold 1.2345678e+07.
func TestNumbersAsFloats(t *testing.T) {
	vals := map[string]any{
		"accounts":       []any{map[string]any{"name": "alice"}},
		"apiCredentials": map[string]any{"apiId": float64(12345678), "apiHash": "0123456789abcdef0123456789abcdef"},
		"config": map[string]any{
			"telegram": map[string]any{"dc": float64(4)},
			"state":    map[string]any{"journal_max_events": float64(100000000)},
		},
	}
	m := renderValues(t, "calld", vals)
	if got := m.secrets["calld-api"].StringData["api_id"]; got != "12345678" {
		t.Errorf("api_id in the Secret %q; want 12345678", got)
	}
	cfg := loadConfig(t, m.configMaps["calld-config"].Data["alice.toml"])
	if cfg.Telegram.DC != 4 || cfg.State.JournalMaxEvents != 100000000 {
		t.Errorf("telegram.dc %d, state.journal_max_events %d; want 4, 100000000", cfg.Telegram.DC, cfg.State.JournalMaxEvents)
	}
}

// TestAddAccountLeavesOthers: adding an account to the list (helm upgrade)
// changes nothing in the other accounts' StatefulSets and Services, so
// their daemons are not restarted.
func TestAddAccountLeavesOthers(t *testing.T) {
	vals := values(t, "three-accounts.yaml")
	before := renderDecoded(t, "calld", "three-accounts.yaml")
	vals["accounts"] = append(vals["accounts"].([]any), map[string]any{"name": "dave"})
	after := renderValues(t, "calld", vals)
	if after.statefulSets["calld-dave"] == nil || len(after.statefulSets) != 4 {
		t.Fatalf("StatefulSets after adding dave: %v", after.statefulSets)
	}
	for name, sts := range before.statefulSets {
		if !equality.Semantic.DeepEqual(sts, after.statefulSets[name]) {
			t.Errorf("%s changed when dave was added", name)
		}
		if !equality.Semantic.DeepEqual(before.services[name], after.services[name]) {
			t.Errorf("Service %s changed when dave was added", name)
		}
	}
}
