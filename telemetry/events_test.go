package telemetry_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/telemetry"
)

// logCall is one slog call in Herald's code with a literal message.
type logCall struct {
	pos, msg string
	named    bool // the call passes its own "event" attribute
}

// logCalls finds every Debug/Info/Warn/Error(Context)/Log call with a
// literal message in Herald's non-test Go files.
func logCalls(t *testing.T) []logCall {
	t.Helper()
	var calls []logCall
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tools" || strings.HasPrefix(d.Name(), ".")) && p != ".." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			idx := map[string]int{"Debug": 0, "Info": 0, "Warn": 0, "Error": 0,
				"DebugContext": 1, "InfoContext": 1, "WarnContext": 1, "ErrorContext": 1, "Log": 2}
			i, ok := idx[sel.Sel.Name]
			if !ok || len(c.Args) <= i {
				return true
			}
			lit, ok := c.Args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			msg, _ := strconv.Unquote(lit.Value)
			call := logCall{pos: fset.Position(c.Pos()).String(), msg: msg}
			for _, a := range c.Args[i+1:] {
				if k, ok := a.(*ast.BasicLit); ok && k.Value == strconv.Quote(telemetry.EventKey) {
					call.named = true
				}
			}
			calls = append(calls, call)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

// TestEveryLogMessageHasAnEvent: every message Herald logs has a stable
// event name in the catalogue, and the catalogue names nothing that is no
// longer logged.
func TestEveryLogMessageHasAnEvent(t *testing.T) {
	calls := logCalls(t)
	if len(calls) < 40 {
		t.Fatalf("found %d log calls; the scan missed the code", len(calls))
	}
	logged := map[string]bool{}
	for _, c := range calls {
		logged[c.msg] = true
		if _, ok := telemetry.Events[c.msg]; !ok && !c.named {
			t.Errorf("%s: message %q has no event in telemetry.Events (add one, and document it in docs/operations.md)", c.pos, c.msg)
		}
	}
	for msg := range telemetry.Events {
		if !logged[msg] {
			t.Errorf("telemetry.Events lists %q, which nothing logs any more", msg)
		}
	}
}

// TestEventCatalogueIsDocumented: docs/operations.md lists every event.
func TestEventCatalogueIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ev := range telemetry.Events {
		if !slices.Contains(names, ev) {
			names = append(names, ev)
		}
	}
	for _, ev := range names {
		if !strings.Contains(string(doc), "| `"+ev+"` |") {
			t.Errorf("docs/operations.md (Log events) does not document event %q", ev)
		}
	}
}

func TestEventHandlerNamesEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.EventHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	log.Info("delivered", "action", "a1")
	log.Warn("something new")
	log.Info("delivered", telemetry.EventKey, "custom.event")
	var got []string
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m["component"] != "test" {
			t.Errorf("attributes of With lost: %s", line)
		}
		got = append(got, m[telemetry.EventKey].(string))
	}
	want := []string{"delivery.delivered", telemetry.UnlistedEvent, "custom.event"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if strings.Count(buf.String(), `"event"`) != 3 {
		t.Fatalf("an explicit event was duplicated: %s", buf.String())
	}
}
