package bench

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// TestSmokeTestsRunUnderShort keeps the harness's smoke tests in make test
// (which passes -short): no test file of bench/ may consult
// testing.Short to skip, or a broken harness would pass CI unnoticed.
func TestSmokeTestsRunUnderShort(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("*/*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("found only %v", files)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			ifs, ok := n.(*ast.IfStmt)
			if !ok {
				return true
			}
			if skipsOnShort(ifs) {
				t.Errorf("%s: a test skips under -short; make test would not run it", fset.Position(ifs.Pos()))
			}
			return true
		})
	}
}

// skipsOnShort reports whether ifs is `if testing.Short() { ... Skip ... }`.
func skipsOnShort(ifs *ast.IfStmt) bool {
	short := false
	ast.Inspect(ifs.Cond, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Short" {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "testing" {
				short = true
			}
		}
		return true
	})
	if !short {
		return false
	}
	skip := false
	ast.Inspect(ifs.Body, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Skip" || sel.Sel.Name == "Skipf" || sel.Sel.Name == "SkipNow") {
			skip = true
		}
		return true
	})
	return skip
}
