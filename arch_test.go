package billingaudit_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// The arrows between the parts (ARCHITECTURE.md), checked on the import
// graph: a rule a refactoring breaks fails here, not in a review.

const module = "github.com/fieldaudit/billing-audit/"

// pkg is what `go list -deps -json` says of a package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

// listDeps lists the packages matched by patterns and everything they
// import, excluding tests.
func listDeps(t *testing.T, patterns ...string) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,Deps,Standard"}, patterns...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

func TestArchitecture(t *testing.T) {
	tests := []struct {
		name      string
		patterns  []string
		forbidden []string // prefixes no dependency may have
	}{
		{name: "the domain imports no AWS, HTTP, excelize, adapter or application package",
			patterns: []string{"./shared/audit/...", "./shared/webhook/..."},
			forbidden: []string{"github.com/aws/", "net/http", "github.com/xuri/excelize",
				module + "shared/smartsheet", module + "shared/pipeline", module + "shared/aws/", module + "shared/bolt",
				module + "shared/xlsx", module + "shared/local/", module + "shared/config"}},
		{name: "the pipeline depends on ports, not on a concrete store, AWS or excelize",
			patterns: []string{"./shared/pipeline"},
			forbidden: []string{"github.com/aws/", "github.com/xuri/excelize", "go.etcd.io/bbolt",
				module + "shared/aws/", module + "shared/bolt", module + "shared/xlsx", module + "shared/local/", module + "cmd/"}},
		{name: "functions link neither the CLI, the local tooling nor testing",
			patterns:  []string{"./functions/..."},
			forbidden: []string{module + "cmd/", module + "shared/local/", module + "shared/bolt", "testing"}},
		{name: "the CLI links no test code",
			patterns:  []string{"./cmd/billing-audit"},
			forbidden: []string{"testing", module + "shared/local/smartsimtest", module + "shared/local/localstacktest"}},
		{name: "adapters do not reach into the local tooling",
			patterns:  []string{"./shared/smartsheet", "./shared/aws/...", "./shared/bolt", "./shared/xlsx", "./shared/digestfile", "./shared/listen", "./shared/alert"},
			forbidden: []string{module + "shared/local/", module + "cmd/", "testing"}},
		{name: "the alert channels depend on the pipeline's port, not on a store or another adapter",
			patterns: []string{"./shared/alert", "./shared/aws/snsalert"},
			forbidden: []string{"go.etcd.io/bbolt", "github.com/xuri/excelize", module + "shared/bolt", module + "shared/aws/dynamo",
				module + "shared/config", module + "shared/xlsx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for path, p := range listDeps(t, tt.patterns...) {
				if strings.HasSuffix(path, "test") {
					continue // a test helper (storetest, smartsimtest, …): imported by tests only
				}
				for _, dep := range append([]string{path}, p.Deps...) {
					for _, f := range tt.forbidden {
						if dep == f || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(dep, f+"/")) {
							t.Errorf("%s depends on %s", path, dep)
						}
					}
				}
			}
		})
	}
}
