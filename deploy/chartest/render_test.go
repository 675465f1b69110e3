// Package chartest checks the Helm chart in deploy/helm/calld: helm's
// linter, a rendering of it decoded strictly into the k8s.io/api types, and
// the wiring that makes one account one daemon (docs/kubernetes.md). It is
// a module of its own so that helm and k8s.io/api stay out of the daemon's
// go.mod; it uses the daemon's own config package (through a replace of
// the root module) to load every rendered calld.toml.
package chartest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, from this package's directory.
const chartDir = "../helm/calld"

// manifests is one rendering, decoded: the objects by kind and name.
type manifests struct {
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
}

// values reads a values file of testdata.
func values(t *testing.T, name string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

// render renders the chart as `helm template RELEASE -n calls -f ...` does
// (client side, default capabilities): the rendered files by name.
func render(release string, vals map[string]any) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: release, Namespace: "calls", Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// decode splits the rendered files into documents and decodes each one
// strictly (an unknown or duplicate field is an error) into the k8s.io/api
// type of its kind; a kind the chart should not make is an error.
func decode(files map[string]string) (*manifests, error) {
	m := &manifests{
		statefulSets: map[string]*appsv1.StatefulSet{},
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		secrets:      map[string]*corev1.Secret{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, file := range names {
		if strings.HasSuffix(file, "NOTES.txt") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(files[file]) {
			if err := m.add([]byte(doc)); err != nil {
				return nil, fmt.Errorf("%s: %w\n%s", file, err, doc)
			}
		}
	}
	return m, nil
}

// add decodes one document into its kind's map.
func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 StatefulSet":
		return put(m.statefulSets, doc)
	case "v1 Service":
		return put(m.services, doc)
	case "v1 ConfigMap":
		return put(m.configMaps, doc)
	case "v1 Secret":
		return put(m.secrets, doc)
	}
	return fmt.Errorf("unexpected object %q %q", tm.APIVersion, tm.Kind)
}

// put decodes doc strictly into a new T and files it under its name,
// which must be there and new.
func put[T any, P interface {
	*T
	GetName() string
}](into map[string]*T, doc []byte) error {
	o := P(new(T))
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return err
	}
	name := o.GetName()
	if _, dup := into[name]; dup || name == "" {
		return fmt.Errorf("name %q empty or twice", name)
	}
	into[name] = (*T)(o)
	return nil
}

// renderDecoded renders a values file of testdata and decodes it.
func renderDecoded(t *testing.T, release, file string) *manifests {
	t.Helper()
	return renderValues(t, release, values(t, file))
}

// renderValues renders the chart with vals and decodes it.
func renderValues(t *testing.T, release string, vals map[string]any) *manifests {
	t.Helper()
	files, err := render(release, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	m, err := decode(files)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// TestDecodeIsStrict: the strict decoding this package relies on refuses
// a field that the k8s.io/api type does not have (a typo in a template
// would otherwise pass unseen).
func TestDecodeIsStrict(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: a}\nspec: {replica: 1}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: a, name: b}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n",
	} {
		if _, err := decode(map[string]string{"t.yaml": doc}); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}
