package chartest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/calld/calld/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m, nil) }

// The paths the chart and the image (the repository's Containerfile) agree on.
const (
	binary     = "/usr/bin/calld"
	stateDir   = "/var/lib/calld"
	runDir     = "/run/calld"
	configPath = "/etc/calld/calld.toml"
	// calld's stop bound (CONTRACT §5.2).
	stopSeconds = 10
)

// TestLint runs helm's linter (`helm lint -f`) on the chart: an error or
// a warning fails. (The linter only logs a template's fail: TestBadValues
// renders the values that must fail.) A chart with a broken template is
// an error: the linter is not blind.
func TestLint(t *testing.T) {
	for _, file := range []string{"three-accounts.yaml", "existing-secret.yaml"} {
		l := lint.All(chartDir, values(t, file), "calls", false)
		for _, msg := range l.Messages {
			if msg.Severity >= support.WarningSev {
				t.Errorf("helm lint -f %s: %v", file, msg)
			}
		}
	}
	broken := t.TempDir()
	if err := os.CopyFS(broken, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	tpl := filepath.Join(broken, "templates", "service.yaml")
	data, err := os.ReadFile(tpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tpl, append(data, "{{ end }}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if l := lint.All(broken, values(t, "three-accounts.yaml"), "calls", false); l.HighestSeverity != support.ErrorSev {
		t.Errorf("helm lint of a broken template: no error:\n%s", msgs(l))
	}
}

func msgs(l support.Linter) string {
	var b strings.Builder
	for _, m := range l.Messages {
		b.WriteString(m.Error() + "\n")
	}
	return b.String()
}

// TestRender renders three accounts and checks that each is one daemon:
// one StatefulSet of one replica, its headless Service, its volume at the
// state directory, its config, the Secret's credentials, the probes, the
// metrics port and the hardening.
func TestRender(t *testing.T) {
	m := renderDecoded(t, "calld", "three-accounts.yaml")
	if len(m.statefulSets) != 3 || len(m.services) != 3 || len(m.configMaps) != 1 || len(m.secrets) != 1 {
		t.Fatalf("rendered %d StatefulSets, %d Services, %d ConfigMaps, %d Secrets; want 3, 3, 1, 1",
			len(m.statefulSets), len(m.services), len(m.configMaps), len(m.secrets))
	}
	sec := m.secrets["calld-api"]
	if sec == nil || sec.StringData["api_id"] != "12345678" || sec.StringData["api_hash"] != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("Secret calld-api: %+v", sec)
	}
	cm := m.configMaps["calld-config"]
	if cm == nil {
		t.Fatal("no ConfigMap calld-config")
	}
	for _, name := range []string{"alice", "bob", "support-3"} {
		t.Run(name, func(t *testing.T) {
			sts := m.statefulSets["calld-"+name]
			if sts == nil {
				t.Fatalf("no StatefulSet calld-%s", name)
			}
			checkStatefulSet(t, m, sts)
			c := checkPod(t, sts, "calld-config", name+".toml")
			checkSecretRefs(t, c, "calld-api", "api_id", "api_hash")
			checkMetrics(t, sts, c, 9469)
			cfg := loadConfig(t, cm.Data[name+".toml"])
			checkConfig(t, cfg, name, c, ":9469")
		})
	}
	bob, alice := m.statefulSets["calld-bob"], m.statefulSets["calld-alice"]
	checkOverrides(t, bob, alice, loadConfig(t, cm.Data["bob.toml"]), loadConfig(t, cm.Data["alice.toml"]))
}

// TestRenderExistingSecret: the credentials from the operator's Secret
// (no Secret rendered), metrics off (no port, no annotations, no listen).
func TestRenderExistingSecret(t *testing.T) {
	m := renderDecoded(t, "prod", "existing-secret.yaml")
	if len(m.secrets) != 0 {
		t.Errorf("rendered Secrets %v; want none (existingSecret)", m.secrets)
	}
	sts := m.statefulSets["prod-calld-carol"]
	if sts == nil || len(m.statefulSets) != 1 {
		t.Fatalf("StatefulSets %v; want prod-calld-carol", m.statefulSets)
	}
	checkStatefulSet(t, m, sts)
	c := checkPod(t, sts, "prod-calld-config", "carol.toml")
	checkSecretRefs(t, c, "telegram-app", "id", "hash")
	if len(c.Ports) != 0 || sts.Spec.Template.Annotations["prometheus.io/scrape"] != "" {
		t.Errorf("metrics off, yet ports %v, annotations %v", c.Ports, sts.Spec.Template.Annotations)
	}
	if svc := m.services["prod-calld-carol"]; svc == nil || len(svc.Spec.Ports) != 0 {
		t.Errorf("Service prod-calld-carol: %+v; want one without ports", svc)
	}
	cfg := loadConfig(t, m.configMaps["prod-calld-config"].Data["carol.toml"])
	checkConfig(t, cfg, "carol", c, "")
}

// checkStatefulSet: exactly one replica, governed by a headless Service
// whose selector picks the pod, a volumeClaimTemplate for the state, and
// a grace period above calld's stop bound.
func checkStatefulSet(t *testing.T, m *manifests, sts *appsv1.StatefulSet) {
	t.Helper()
	if r := sts.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("%s: replicas %s; want exactly 1 (not a value)", sts.Name, ptr(r))
	}
	svc := m.services[sts.Spec.ServiceName]
	if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("%s: serviceName %q is not a rendered headless Service", sts.Name, sts.Spec.ServiceName)
	}
	labels := sts.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if labels[k] != v {
			t.Errorf("%s: the Service's selector %s=%s does not pick the pod (labels %v)", sts.Name, k, v, labels)
		}
	}
	for k, v := range sts.Spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("%s: the selector %s=%s does not pick the pod (labels %v)", sts.Name, k, v, labels)
		}
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "state" {
		t.Fatalf("%s: volumeClaimTemplates %+v; want one named state", sts.Name, sts.Spec.VolumeClaimTemplates)
	}
	if r := sts.Spec.PersistentVolumeClaimRetentionPolicy; r == nil || r.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("%s: the claim (the session) must outlive the StatefulSet: %+v", sts.Name, r)
	}
	g := sts.Spec.Template.Spec.TerminationGracePeriodSeconds
	if g == nil || *g <= stopSeconds {
		t.Errorf("%s: terminationGracePeriodSeconds %s; want more than calld's %d s", sts.Name, ptr(g), stopSeconds)
	}
}

// ptr prints what p points to, or nil.
func ptr[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// checkPod checks the pod template's one container: the image's binary
// with the config from the account's key of the ConfigMap, the volumes at
// their paths, the probes and the hardening. It returns the container.
func checkPod(t *testing.T, sts *appsv1.StatefulSet, configMap, key string) corev1.Container {
	t.Helper()
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers; want 1", sts.Name, len(pod.Containers))
	}
	c := pod.Containers[0]
	if want := []string{binary, "serve", "--config", configPath}; !slices.Equal(c.Command, want) {
		t.Errorf("%s: command %q; want %q", sts.Name, c.Command, want)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm
	}
	if vm, ok := mounts[stateDir]; !ok || vm.Name != sts.Spec.VolumeClaimTemplates[0].Name || vm.ReadOnly {
		t.Errorf("%s: %s is not the claim's volume, writable: %+v", sts.Name, stateDir, vm)
	}
	if vm, ok := mounts[runDir]; !ok || vols[vm.Name].EmptyDir == nil {
		t.Errorf("%s: %s (the socket) is not an emptyDir: %+v", sts.Name, runDir, vm)
	}
	vm, ok := mounts[filepath.Dir(configPath)]
	cmv := vols[vm.Name].ConfigMap
	if !ok || !vm.ReadOnly || cmv == nil || cmv.Name != configMap || len(cmv.Items) != 1 ||
		cmv.Items[0].Key != key || cmv.Items[0].Path != filepath.Base(configPath) {
		t.Errorf("%s: %s is not %s's key %s, read-only: %+v %+v", sts.Name, configPath, configMap, key, vm, cmv)
	}
	checkProbes(t, sts.Name, c)
	checkSecurity(t, sts.Name, pod, c)
	return c
}

// checkProbes: ready is `calld status` (exit 0: healthy); live, and
// started, is `calld calls` (exit 0 whenever the daemon answers, also
// while not logged in or away from Telegram, when `calld status` exits 3).
func checkProbes(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		want  []string
	}{
		{"startupProbe", c.StartupProbe, []string{binary, "calls"}},
		{"livenessProbe", c.LivenessProbe, []string{binary, "calls"}},
		{"readinessProbe", c.ReadinessProbe, []string{binary, "status"}},
	} {
		if p.probe == nil || p.probe.Exec == nil || !slices.Equal(p.probe.Exec.Command, p.want) {
			t.Errorf("%s: %s %+v; want exec %q", name, p.what, p.probe, p.want)
		} else if p.probe.TimeoutSeconds < 1 {
			t.Errorf("%s: %s without a timeout", name, p.what)
		}
	}
}

// checkSecurity: the systemd unit's hardening (configs/calld.service) in
// the pod: the Containerfile's non-root uid, no privilege escalation, no
// capability, a read-only root, the default seccomp filter, no API token.
func checkSecurity(t *testing.T, name string, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	uid := containerfileUID(t)
	ps, cs := pod.SecurityContext, c.SecurityContext
	if ps == nil || cs == nil {
		t.Fatalf("%s: no security context: pod %v, container %v", name, ps, cs)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"pod runAsNonRoot", ps.RunAsNonRoot != nil && *ps.RunAsNonRoot},
		{"pod runAsUser " + uid, ps.RunAsUser != nil && itoa(*ps.RunAsUser) == uid},
		{"pod fsGroup " + uid + " (the claim writable)", ps.FSGroup != nil && itoa(*ps.FSGroup) == uid},
		{"pod seccompProfile RuntimeDefault", ps.SeccompProfile != nil && ps.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"container runAsNonRoot", cs.RunAsNonRoot != nil && *cs.RunAsNonRoot},
		{"container runAsUser " + uid, cs.RunAsUser != nil && itoa(*cs.RunAsUser) == uid},
		{"allowPrivilegeEscalation false", cs.AllowPrivilegeEscalation != nil && !*cs.AllowPrivilegeEscalation},
		{"readOnlyRootFilesystem", cs.ReadOnlyRootFilesystem != nil && *cs.ReadOnlyRootFilesystem},
		{"capabilities drop ALL, add none", cs.Capabilities != nil && slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(cs.Capabilities.Add) == 0},
		{"not privileged", cs.Privileged == nil || !*cs.Privileged},
		{"container seccompProfile RuntimeDefault", cs.SeccompProfile != nil && cs.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"no service account token", pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s: want %s", name, ch.what)
		}
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// TestContainerfilePaths: the image puts the binary, the state volume and
// the socket's directory where the chart expects them.
func TestContainerfilePaths(t *testing.T) {
	data, err := os.ReadFile("../../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"COPY dist/calld " + binary,
		`VOLUME ["` + stateDir + `"]`,
		"ENV CALLD_SOCKET=" + runDir + "/",
	} {
		if !strings.Contains(string(data), "\n"+line) {
			t.Errorf("Containerfile: no line %q", line)
		}
	}
}

// containerfileUID is the uid of the image's USER line in the repository's
// Containerfile, which the chart must run as.
func containerfileUID(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER (\d+)(:\d+)?$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("Containerfile: no USER uid line")
	}
	return string(m[1])
}
