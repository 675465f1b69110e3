package calld_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxFuncLines is the most lines a function outside tests may take, from
// its func keyword to its closing brace.
const maxFuncLines = 80

// longFuncs may be longer than maxFuncLines, by file and function
// (Recv.Name for methods), each with the reason. An entry whose function
// is no longer too long fails the test, so the list only shrinks. The
// fsm's transition table is a variable, not a function, and the
// simulator's dispatch switch (sim.Server.handleLocked) fits: one call
// per case.
var longFuncs = map[string]string{}

// funcSize is one function's length.
type funcSize struct {
	key   string // file:Recv.Name, or file:Outer.func for a literal
	lines int
}

// TestFunctionLength: no function of the module outside tests is longer
// than maxFuncLines, except those in longFuncs. With -v it prints the
// longest five.
func TestFunctionLength(t *testing.T) {
	sizes := funcSizes(t, ".")
	sort.Slice(sizes, func(i, j int) bool {
		if sizes[i].lines != sizes[j].lines {
			return sizes[i].lines > sizes[j].lines
		}
		return sizes[i].key < sizes[j].key
	})
	for i := 0; i < 5 && i < len(sizes); i++ {
		t.Logf("%3d lines  %s", sizes[i].lines, sizes[i].key)
	}
	allowed := make(map[string]bool)
	for _, s := range sizes {
		if s.lines <= maxFuncLines {
			continue
		}
		if _, ok := longFuncs[s.key]; ok {
			allowed[s.key] = true
			continue
		}
		t.Errorf("%s: %d lines (at most %d): split it into named steps", s.key, s.lines, maxFuncLines)
	}
	for key := range longFuncs {
		if !allowed[key] {
			t.Errorf("%s is in longFuncs but is not longer than %d lines (or is gone): remove the entry", key, maxFuncLines)
		}
	}
}

// funcSizes measures every function declaration and function literal in
// the non-test .go files below root.
func funcSizes(t *testing.T, root string) []funcSize {
	t.Helper()
	fset := token.NewFileSet()
	var sizes []funcSize
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		file := filepath.ToSlash(path)
		lines := func(n ast.Node) int {
			return fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := funcName(fd)
			sizes = append(sizes, funcSize{key: file + ":" + name, lines: lines(fd)})
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if fl, ok := n.(*ast.FuncLit); ok {
					sizes = append(sizes, funcSize{key: file + ":" + name + ".func", lines: lines(fl)})
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) == 0 {
		t.Fatal("no functions found: the walk missed the module")
	}
	return sizes
}

// funcName is Name, or Recv.Name for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	switch x := typ.(type) {
	case *ast.IndexExpr: // generic receiver T[P]
		typ = x.X
	case *ast.IndexListExpr:
		typ = x.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
