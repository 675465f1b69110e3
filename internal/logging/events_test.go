package logging

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// docEvents reads the event names of docs/logging.md's "Events" table.
func docEvents(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Events\n")
	if !ok {
		t.Fatal(`docs/logging.md has no "## Events" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	var out []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("docs/logging.md's Events table is empty")
	}
	return out
}

// Every event calld logs is a constant of events.go and a row of the
// Events table in docs/logging.md, and the other way round.
func TestDocsEventsAreConstants(t *testing.T) {
	events, _ := schema(t)
	byValue := map[string]string{}
	for name, v := range events {
		byValue[v] = name
	}
	documented := map[string]bool{}
	for _, v := range docEvents(t) {
		if documented[v] {
			t.Errorf("docs/logging.md lists event `%s` twice", v)
		}
		documented[v] = true
		if _, ok := byValue[v]; !ok {
			t.Errorf("docs/logging.md documents event `%s`, which is no constant of events.go", v)
		}
	}
	for v, name := range byValue {
		if !documented[v] {
			t.Errorf("%s = %q is not a row of docs/logging.md's Events table", name, v)
		}
	}
}

// No code outside this package names an event with a string literal: an
// event is a constant of events.go, so the docs test above covers it.
// The check reads every non-test Go file of the module.
func TestNoEventLiterals(t *testing.T) {
	events, _ := schema(t)
	isEvent := map[string]bool{}
	for _, v := range events {
		if v != EventLog { // "log" is too common a word to forbid
			isEvent[v] = true
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]bool{} // a literal may be found twice: as a literal and as a call's argument
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || path == self) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if v, ok := stringLit(n); ok && isEvent[v] {
					bad[fset.Position(n.Pos()).String()+": event "+n.Value+" as a literal"] = true
				}
			case *ast.CallExpr:
				if len(n.Args) < 2 || !isEventKey(n.Args[0]) {
					return true
				}
				if lit, ok := n.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					bad[fset.Position(lit.Pos()).String()+": event "+lit.Value+" as a literal"] = true
				}
				if lit, ok := n.Args[0].(*ast.BasicLit); ok {
					bad[fset.Position(lit.Pos()).String()+`: key "event" as a literal (use logging.FieldEvent)`] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sorted := make([]string, 0, len(bad))
	for b := range bad {
		sorted = append(sorted, b)
	}
	sort.Strings(sorted)
	for _, b := range sorted {
		rel, _ := filepath.Rel(root, b)
		if rel == "" || strings.HasPrefix(rel, "..") {
			rel = b
		}
		t.Error(rel)
	}
}

func stringLit(n *ast.BasicLit) (string, bool) {
	if n.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(n.Value)
	return v, err == nil
}

// isEventKey reports whether e is the key of the event member: the
// literal "event" or a FieldEvent constant.
func isEventKey(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		v, ok := stringLit(e)
		return ok && v == FieldEvent
	case *ast.SelectorExpr:
		return e.Sel.Name == "FieldEvent"
	case *ast.Ident:
		return e.Name == "FieldEvent"
	}
	return false
}

// logging is a leaf: it imports no package of calld, so that every package
// can log without an import cycle (its tests neither).
func TestLeaf(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod names no module")
	}
	module := string(m[1])
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == module || strings.HasPrefix(path, module+"/") {
				t.Errorf("%s imports %s", fset.Position(imp.Pos()), path)
			}
		}
	}
}
