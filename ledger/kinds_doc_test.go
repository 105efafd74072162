package ledger_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	herald "github.com/heraldhq/herald"
)

// kindName is the shape of a ledger entry kind: "<area>.<event>".
var kindName = regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)

// codeKinds finds every ledger entry kind the module's (non-test) code can
// write, by reading its syntax:
//   - constants named Kind… with a dotted string value;
//   - `Kind: "x.y"` in a composite literal (store.LedgerRecord, ledger.Entry);
//   - a dotted literal passed as the `kind` parameter of a function in the
//     same package (helpers such as appendContactEntry);
//   - `Kind: "action." + string(status)`: every status an action can move to.
func codeKinds(t *testing.T, root string) map[string][]string {
	t.Helper()
	kinds := map[string][]string{}
	add := func(fset *token.FileSet, pos token.Pos, lit *ast.BasicLit) {
		s, err := strconv.Unquote(lit.Value)
		if err != nil || !kindName.MatchString(s) {
			return
		}
		kinds[s] = append(kinds[s], fset.Position(pos).String())
	}
	fset := token.NewFileSet()
	pkgs := map[string][]*ast.File{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tools" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	actionPrefix := false
	for _, files := range pkgs {
		// Functions of this package with a parameter named kind.
		kindParam := map[string]int{}
		for _, f := range files {
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok {
					continue
				}
				i := 0
				for _, field := range fd.Type.Params.List {
					for _, n := range field.Names {
						if n.Name == "kind" {
							kindParam[fd.Name.Name] = i
						}
						i++
					}
					if len(field.Names) == 0 {
						i++
					}
				}
			}
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec:
					for i, name := range n.Names {
						if strings.HasPrefix(name.Name, "Kind") && i < len(n.Values) {
							if lit, ok := n.Values[i].(*ast.BasicLit); ok {
								add(fset, lit.Pos(), lit)
							}
						}
					}
				case *ast.KeyValueExpr:
					if k, ok := n.Key.(*ast.Ident); ok && (k.Name == "Kind" || k.Name == "LedgerKind") {
						switch v := n.Value.(type) {
						case *ast.BasicLit:
							add(fset, v.Pos(), v)
						case *ast.BinaryExpr:
							if lit, ok := v.X.(*ast.BasicLit); ok && lit.Value == `"action."` {
								actionPrefix = true
							}
						}
					}
				case *ast.BinaryExpr:
					// kind := "action." + string(tr.To) (store.transitionRecord)
					if lit, ok := n.X.(*ast.BasicLit); ok && lit.Value == `"action."` {
						actionPrefix = true
					}
				case *ast.CallExpr:
					var name string
					switch fn := n.Fun.(type) {
					case *ast.Ident:
						name = fn.Name
					case *ast.SelectorExpr:
						name = fn.Sel.Name
					}
					if i, ok := kindParam[name]; ok && i < len(n.Args) {
						if lit, ok := n.Args[i].(*ast.BasicLit); ok {
							add(fset, lit.Pos(), lit)
						}
					}
				}
				return true
			})
		}
	}
	if !actionPrefix {
		t.Fatal(`no "action." + status kind found: the scanner no longer matches store.transitionRecord`)
	}
	for _, to := range herald.Statuses {
		for _, from := range herald.Statuses {
			if herald.CanTransition(from, to) {
				kinds["action."+string(to)] = append(kinds["action."+string(to)], "store.transitionRecord")
				break
			}
		}
	}
	return kinds
}

// TestAuditDocListsEveryKind fails when the code can write a ledger entry
// kind that docs/audit.md does not name: an auditor reading an export must
// find every kind explained.
func TestAuditDocListsEveryKind(t *testing.T) {
	doc, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	kinds := codeKinds(t, "..")
	for _, must := range []string{"ledger.genesis", "action.received", "action.deferred", "policy.params_changed", "ledger.pruned", "ledger.payloads_purged", "action.pending_approval"} {
		if _, ok := kinds[must]; !ok {
			t.Errorf("scanner did not find kind %q in the code", must)
		}
	}
	var missing []string
	for k, where := range kinds {
		if !strings.Contains(string(doc), "`"+k+"`") {
			missing = append(missing, k+" (written at "+where[0]+")")
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("docs/audit.md does not list these entry kinds:\n  %s", strings.Join(missing, "\n  "))
	}
}
