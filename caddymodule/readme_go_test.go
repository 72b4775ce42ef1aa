package caddymodule_test

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"maps"
	"regexp"
	"strings"
	"testing"
)

// readmeGoBlocks returns the README's Go code blocks.
func readmeGoBlocks(t *testing.T) []string {
	t.Helper()
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(mustReadFile(t, "../README.md"), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// interfaceMethods returns the methods of the interface type name in a
// Go file's source, each as its printed signature, with the package's
// own qualifier (connector.) left out so that a listing written from
// outside the package compares equal to the declaration.
func interfaceMethods(t *testing.T, src, name, qualifier string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		t.Fatalf("parsing the code that declares %s: %v", name, err)
	}
	methods := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != name {
			return true
		}
		for _, m := range ts.Type.(*ast.InterfaceType).Methods.List {
			var b bytes.Buffer
			if err := format.Node(&b, fset, m.Type); err != nil {
				t.Fatal(err)
			}
			methods[m.Names[0].Name] = strings.ReplaceAll(b.String(), qualifier, "")
		}
		return false
	})
	return methods
}

// The Go a third-party developer copies from the README is the API as it
// is: the Connector interface the README lists has the methods, with the
// signatures, of connector.Connector, and the store conformance test it
// shows type-checks against storetest and provisioner as they are.
func TestREADMEGoBlocks(t *testing.T) {
	var sawConnector, sawConformance bool
	for _, block := range readmeGoBlocks(t) {
		switch {
		case strings.Contains(block, "type Connector interface"):
			sawConnector = true
			shown := interfaceMethods(t, "package connector\n"+block, "Connector", "connector.")
			real := interfaceMethods(t, mustReadFile(t, "../connector/connector.go"), "Connector", "connector.")
			if len(real) == 0 || !maps.Equal(shown, real) {
				t.Errorf("README.md lists connector.Connector as %v, but it is %v", shown, real)
			}
		case strings.Contains(block, "storetest.Run("):
			sawConformance = true
			typeCheckConformanceBlock(t, block)
		}
	}
	if !sawConnector || !sawConformance {
		t.Errorf("README.md: the Connector listing (found: %v) or the conformance test (found: %v) is gone; update this test", sawConnector, sawConformance)
	}
}

// typeCheckConformanceBlock type-checks the README's conformance test in a
// file of its own, with the imports it needs and newTestStore as the
// reader's store would have it.
func typeCheckConformanceBlock(t *testing.T, block string) {
	t.Helper()
	src := `package mystore

import (
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/storetest"
)

type myStore struct{ provisioner.Store }

func newTestStore(t *testing.T) *myStore { return nil }

` + block
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "mystore_test.go", src, 0)
	if err != nil {
		t.Fatalf("README.md's conformance test does not parse: %v", err)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	if _, err := conf.Check("example.com/mystore", fset, []*ast.File{f}, nil); err != nil {
		t.Errorf("README.md's conformance test does not compile: %v", err)
	}
}

// exportedDecls returns the exported interface types (interfaces) or
// functions starting with funcPrefix declared in the non-test Go files
// of dir.
func exportedDecls(t *testing.T, dir string, interfaces bool, funcPrefix string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok && interfaces && ts.Name.IsExported() {
							if _, ok := ts.Type.(*ast.InterfaceType); ok {
								names = append(names, ts.Name.Name)
							}
						}
					}
				case *ast.FuncDecl:
					if !interfaces && d.Recv == nil && d.Name.IsExported() && strings.HasPrefix(d.Name.Name, funcPrefix) {
						names = append(names, d.Name.Name)
					}
				}
			}
		}
	}
	return names
}

// A third-party store's author learns from the README every role a store
// may play and the conformance part that checks it: each interface of
// package provisioner and each storetest.Run… is named in its Stores
// section. IssuerAdopter (and RunIssuerAdopter) was not, so a store
// written for an earlier release left its goth users behind at the
// upgrade, as new users, with nothing saying what was missing.
func TestREADMEStoresNameEveryRole(t *testing.T) {
	readme := mustReadFile(t, "../README.md")
	_, section, _ := strings.Cut(readme, "\n## Stores\n")
	section, _, _ = strings.Cut(section, "\n## ")
	names := append(exportedDecls(t, "../provisioner", true, ""), exportedDecls(t, "../provisioner/storetest", false, "Run")...)
	if len(names) < 10 {
		t.Fatalf("found only %v in provisioner and storetest", names)
	}
	for _, name := range names {
		if !regexp.MustCompile("`(\\w+\\.)?" + name + "`").MatchString(section) {
			t.Errorf("README.md's Stores section does not name %s", name)
		}
	}
}
