package control

import (
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/calld/calld"
)

// openAPIPath is the API's description, relative to this package.
const openAPIPath = "../../docs/openapi.yaml"

// describedOperation is one operation of docs/openapi.yaml.
type describedOperation struct {
	secret    bool // x-calld-permission: allowed-uid
	notServed bool // x-calld-not-served: true
}

// loadOpenAPI reads docs/openapi.yaml and checks it is a valid OpenAPI
// 3.1 document.
func loadOpenAPI(t *testing.T) *libopenapi.DocumentModel[v3.Document] {
	t.Helper()
	data, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(data)
	if err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("%s is OpenAPI %s, want 3.1", openAPIPath, v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", openAPIPath, errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s (%s)", openAPIPath, e.Message, e.Reason)
		}
		t.FailNow()
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	return m
}

// describedOperations returns the operations of docs/openapi.yaml as
// ServeMux patterns ("GET /v1/calls/{id}").
func describedOperations(t *testing.T) map[string]describedOperation {
	t.Helper()
	m := loadOpenAPI(t)
	ops := map[string]describedOperation{}
	for path, item := range m.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			var d describedOperation
			if n := op.Extensions.GetOrZero("x-calld-permission"); n != nil {
				if n.Value != "allowed-uid" {
					t.Errorf("%s %s: x-calld-permission %q, want allowed-uid or none", method, path, n.Value)
				}
				d.secret = true
			}
			if n := op.Extensions.GetOrZero("x-calld-not-served"); n != nil {
				d.notServed = n.Value == "true"
			}
			ops[strings.ToUpper(method)+" "+path] = d
		}
	}
	return ops
}

// TestOpenAPIDescribesEveryRoute holds docs/openapi.yaml and the server's
// route table to each other: every registered route is described with
// its permission, every described operation is registered, and an
// operation marked x-calld-not-served is not (drop the mark once it is).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	described := describedOperations(t)
	// The daemon serves GET /metrics when it has metrics (always, in
	// calld serve); any handler registers the route.
	registered := NewServer(nil, nil, Options{Metrics: http.NotFoundHandler()}).Routes()
	if len(registered) == 0 {
		t.Fatal("the server registered no routes")
	}
	for _, pattern := range slices.Sorted(maps.Keys(registered)) {
		d, ok := described[pattern]
		switch {
		case !ok:
			t.Errorf("route %q is not described in %s", pattern, openAPIPath)
		case d.notServed:
			t.Errorf("route %q is served: drop its x-calld-not-served in %s", pattern, openAPIPath)
		case d.secret != registered[pattern]:
			t.Errorf("route %q needs an allowed uid: %v; %s says x-calld-permission: allowed-uid: %v",
				pattern, registered[pattern], openAPIPath, d.secret)
		}
	}
	for _, pattern := range slices.Sorted(maps.Keys(described)) {
		if _, ok := registered[pattern]; !ok && !described[pattern].notServed {
			t.Errorf("%s describes %q, which the server does not register", openAPIPath, pattern)
		}
	}
}

// TestOpenAPISchemasHaveEveryField: every JSON field of the domain types
// the API returns is a property of their schema (the schemas are closed:
// a field missing there fails every answer that carries it).
func TestOpenAPISchemasHaveEveryField(t *testing.T) {
	schemas := loadOpenAPI(t).Model.Components.Schemas
	for _, tc := range []struct {
		schema string
		value  any
	}{
		{"Call", calld.Call{}},
		{"Connection", calld.Connection{}},
	} {
		proxy := schemas.GetOrZero(tc.schema)
		if proxy == nil {
			t.Errorf("%s has no schema %s", openAPIPath, tc.schema)
			continue
		}
		props := proxy.Schema().Properties
		typ := reflect.TypeOf(tc.value)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if props == nil || props.GetOrZero(name) == nil {
				t.Errorf("%s: schema %s has no property %q (%s.%s)", openAPIPath, tc.schema, name, typ.Name(), typ.Field(i).Name)
			}
		}
	}
}
