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

// docTable reads the names in the first column of the table under the
// heading "## "+section of docs/logging.md (a cell may hold several:
// "`from`, `to`").
func docTable(t *testing.T, section string) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(doc), "\n## "+section+"\n")
	if !ok {
		t.Fatalf(`docs/logging.md has no "## %s" section`, section)
	}
	text, _, _ = strings.Cut(text, "\n## ")
	name := regexp.MustCompile("`([^`]+)`")
	var out []string
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.TrimSpace(cells[0]) != "" {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			out = append(out, m[1])
		}
	}
	if len(out) == 0 {
		t.Fatalf("docs/logging.md's %s table is empty", section)
	}
	return out
}

// Every event calld logs is a constant of events.go and a row of the
// Events table in docs/logging.md, and every field one of the tables
// "Every line" and "Fields"; and the other way round.
func TestDocsTablesAreConstants(t *testing.T) {
	events, fields := schema(t)
	tests := []struct {
		kind     string
		consts   map[string]string
		sections []string
	}{
		{"event", events, []string{"Events"}},
		{"field", fields, []string{"Every line", "Fields"}},
	}
	for _, tc := range tests {
		byValue := map[string]string{}
		for name, v := range tc.consts {
			byValue[v] = name
		}
		documented := map[string]bool{}
		for _, section := range tc.sections {
			for _, v := range docTable(t, section) {
				if documented[v] {
					t.Errorf("docs/logging.md lists %s `%s` twice", tc.kind, v)
				}
				documented[v] = true
				if _, ok := byValue[v]; !ok {
					t.Errorf("docs/logging.md documents %s `%s`, which is no constant of events.go", tc.kind, v)
				}
			}
		}
		for v, name := range byValue {
			if !documented[v] {
				t.Errorf("%s = %q is not a row of docs/logging.md's %s table", name, v, strings.Join(tc.sections, " or "))
			}
		}
	}
}

// No code outside this package names an event with a string literal: an
// event is a constant of events.go, so the docs test above covers it.
func TestNoEventLiterals(t *testing.T) {
	events, _ := schema(t)
	isEvent := map[string]bool{}
	for _, v := range events {
		if v != EventLog { // "log" is too common a word to forbid
			isEvent[v] = true
		}
	}
	bad := map[string]bool{} // a literal may be found twice: as a literal and as a call's argument
	forModuleCode(t, func(fset *token.FileSet, f *ast.File) {
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
	})
	report(t, bad)
}

// No log call outside this package writes a field key as a literal: keys
// are Field constants of events.go, hence documented in docs/logging.md.
// A log call is recognised by its shape: a field method (Str, Int, ...)
// of a zerolog chain that starts at a level (Info(), Debug(), ...),
// With() or Dict(), or at an event held in a variable named e or ev.
func TestNoFieldLiterals(t *testing.T) {
	_, fields := schema(t)
	known := map[string]string{}
	for name, v := range fields {
		known[v] = name
	}
	bad := map[string]bool{}
	forModuleCode(t, func(fset *token.FileSet, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok || len(c.Args) == 0 || !isLogField(c) {
				return true
			}
			lit, ok := c.Args[0].(*ast.BasicLit)
			if !ok {
				return true
			}
			v, ok := stringLit(lit)
			if !ok {
				return true
			}
			why := "is no Field constant of internal/logging"
			if name, ok := known[v]; ok {
				why = "as a literal (use logging." + name + ")"
			}
			bad[fset.Position(lit.Pos()).String()+": field "+lit.Value+" "+why] = true
			return true
		})
	})
	report(t, bad)
}

var (
	fieldMethods = setOf("Str", "Strs", "Stringer", "Bytes", "Hex", "RawJSON", "Bool", "Bools",
		"Int", "Ints", "Int8", "Int16", "Int32", "Int64", "Uint", "Uint8", "Uint16", "Uint32", "Uint64",
		"Float32", "Float64", "Dur", "Time", "TimeDiff", "AnErr", "Interface", "Any", "Dict", "Array",
		"Object", "EmbedObject", "IPAddr", "IPPrefix", "MACAddr")
	chainStarts = setOf("Trace", "Debug", "Info", "Warn", "Error", "Fatal", "Panic", "Log",
		"WithLevel", "Err", "With", "Dict")
	eventVars = setOf("e", "ev")
)

func setOf(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// isLogField reports whether c is a field method of a zerolog chain.
func isLogField(c *ast.CallExpr) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok || !fieldMethods[sel.Sel.Name] {
		return false
	}
	for x := sel.X; ; {
		switch r := x.(type) {
		case *ast.Ident:
			return eventVars[r.Name]
		case *ast.CallExpr:
			s, ok := r.Fun.(*ast.SelectorExpr)
			if !ok {
				return false
			}
			if chainStarts[s.Sel.Name] {
				return true
			}
			if !fieldMethods[s.Sel.Name] {
				return false
			}
			x = s.X
		default:
			return false
		}
	}
}

// forModuleCode parses every non-test Go file of the module outside this
// package and hands it to visit.
func forModuleCode(t *testing.T, visit func(*token.FileSet, *ast.File)) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
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
		visit(fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// report fails t with each finding, sorted, paths relative to the module.
func report(t *testing.T, bad map[string]bool) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sorted := make([]string, 0, len(bad))
	for b := range bad {
		sorted = append(sorted, strings.TrimPrefix(b, root+string(filepath.Separator)))
	}
	sort.Strings(sorted)
	for _, b := range sorted {
		t.Error(b)
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
