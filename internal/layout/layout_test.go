package layout

import (
	"bufio"
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const module = "github.com/microbot/microbot/"

// rules: packages under from may not import packages under any of to.
var rules = []struct {
	from string
	to   []string
	why  string
}{
	{"framework", []string{"bot", "command", "commandsvc", "input", "cmd"}, "the framework knows nothing of chat"},
	{"input", []string{"framework", "bot", "command", "commandsvc", "cmd"}, "inputs know nothing of the registry or of commands"},
	{"command", []string{"input/slack", "input/xmpp", "input/shell", "bot", "cmd"}, "commands know nothing of Slack, XMPP or the console"},
	{"commandsvc", []string{"input/slack", "input/xmpp", "input/shell", "bot", "cmd"}, "command services know nothing of Slack, XMPP or the console"},
	{"bot", []string{"input/slack", "input/xmpp", "input/shell", "cmd"}, "the bot works with any input; cmd/microbot wires them"},
	{"proto", []string{"bot", "command", "commandsvc", "input", "cmd"}, "the contract depends on the framework only"},
}

func under(pkg, dir string) bool {
	p := strings.TrimPrefix(pkg, module)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// imports returns the non-test imports of every package of the module.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkgs[fields[0]] = fields[1:]
	}
	if len(pkgs) < 20 {
		t.Fatalf("only %d packages listed: go list did not list the module", len(pkgs))
	}
	return pkgs
}

func TestLayering(t *testing.T) {
	for pkg, imps := range imports(t) {
		for _, r := range rules {
			if !under(pkg, r.from) {
				continue
			}
			for _, imp := range imps {
				if !strings.HasPrefix(imp, module) {
					continue
				}
				for _, banned := range r.to {
					if under(imp, banned) {
						t.Errorf("%s imports %s: %s", strings.TrimPrefix(pkg, module), strings.TrimPrefix(imp, module), r.why)
					}
				}
			}
		}
	}
}

// TestCLIOnlyInCommands: libraries take plain configs and options; only the
// programs (cmd/..., examples/...) and the framework's own command-line
// helper for services know urfave/cli.
func TestCLIOnlyInCommands(t *testing.T) {
	const cli = "github.com/urfave/cli/v2"
	for pkg, imps := range imports(t) {
		p := strings.TrimPrefix(pkg, module)
		if under(pkg, "cmd") || under(pkg, "examples") || p == "framework" {
			continue
		}
		for _, imp := range imps {
			if imp == cli {
				t.Errorf("%s imports %s: only cmd/microbot (and framework's flags) read the command line", p, cli)
			}
		}
	}
}

// TestOptionNames: every exported function returning a functional option (a
// type whose name ends in "Option") is named WithX, in every package of the
// module, so options read the same everywhere (client.WithRegistry,
// bot.WithLogger, framework.WithName).
func TestOptionNames(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "tools", "bench", "testdata", ".git": // other modules, fixtures
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() || fd.Type.Results == nil || len(fd.Type.Results.List) != 1 {
				continue
			}
			if typ := typeName(fd.Type.Results.List[0].Type); strings.HasSuffix(typ, "Option") {
				checked++
				if !strings.HasPrefix(fd.Name.Name, "With") {
					rel, _ := filepath.Rel(root, fset.Position(fd.Pos()).String())
					t.Errorf("%s: option %s returns a %s: name it With%s", rel, fd.Name.Name, typ, fd.Name.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d option functions found: the walk missed the module", checked)
	}
}

// typeName returns the name of a type expression: "Option" for Option and
// client.Option, "" for anything else.
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// TestCommandServiceDeps: a command service links only the framework,
// proto/bot and the helper it is written with (package commandsvc), not
// the bot's side of command services, the command table or the inputs.
func TestCommandServiceDeps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", module+"examples/echo").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, module) {
			continue
		}
		seen++
		p := strings.TrimPrefix(pkg, module)
		if !under(pkg, "framework") && !under(pkg, "internal") && p != "proto/bot" && p != "commandsvc" && p != "examples/echo" {
			t.Errorf("examples/echo links %s: a command service needs only the framework, proto/bot and commandsvc", p)
		}
	}
	if seen < 5 {
		t.Fatalf("go list -deps listed %d packages of the module: it did not list examples/echo", seen)
	}
}
