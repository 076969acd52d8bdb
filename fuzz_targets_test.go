package billingaudit_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// makeVar is the value of the variable name in a Makefile's text, its
// backslash-continued lines joined, split into words; ok is false when it is
// not set. It reads the plain assignments (=, :=, ::=, ?=, +=) FUZZ_TARGETS
// uses, not what make would expand.
func makeVar(makefile, name string) (words []string, ok bool) {
	lines := strings.Split(makefile, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + lines[i]
		}
		if strings.HasPrefix(line, "\t") {
			continue // a recipe line
		}
		line, _, _ = strings.Cut(line, "#")
		lhs, rhs, isAssign := strings.Cut(line, "=")
		lhs = strings.TrimSpace(lhs)
		if !isAssign || strings.TrimRight(lhs, ":?+ ") != name {
			continue
		}
		if !strings.HasSuffix(lhs, "+") {
			words = nil
		}
		words, ok = append(words, strings.Fields(rhs)...), true
	}
	return words, ok
}

// TestMakeVar: FUZZ_TARGETS runs over backslash-continued lines, so a parse
// that read only its first line would miss the targets the guard exists for.
func TestMakeVar(t *testing.T) {
	tests := []struct {
		name, makefile string
		want           []string
		wantOK         bool
	}{
		{name: "one line", makefile: "A := x\nFUZZ_TARGETS := a:FuzzA b:FuzzB\n", want: []string{"a:FuzzA", "b:FuzzB"}, wantOK: true},
		{name: "continued lines", makefile: "FUZZ_TARGETS := a:FuzzA \\\n\tb:FuzzB\\\n\tc:FuzzC\nfuzz:\n\tgo test\n",
			want: []string{"a:FuzzA", "b:FuzzB", "c:FuzzC"}, wantOK: true},
		{name: "comment and other operators", makefile: "FUZZ_TARGETS ?= a:FuzzA # b:FuzzB\nFUZZ_TARGETS += c:FuzzC\n",
			want: []string{"a:FuzzA", "c:FuzzC"}, wantOK: true},
		{name: "a later assignment replaces", makefile: "FUZZ_TARGETS = a:FuzzA\nFUZZ_TARGETS ::= b:FuzzB\n", want: []string{"b:FuzzB"}, wantOK: true},
		{name: "a longer name or a recipe line is not it", makefile: "FUZZ_TARGETS_LONG := a:FuzzA\nfuzz:\n\tFUZZ_TARGETS=b:FuzzB go test\n"},
		{name: "set empty", makefile: "FUZZ_TARGETS :=\n", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := makeVar(tt.makefile, "FUZZ_TARGETS")
			if !slices.Equal(got, tt.want) || ok != tt.wantOK {
				t.Errorf("makeVar() = %q, %v, want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// fuzzTargets lists the fuzz targets of the test files under dirs, as
// "<package dir>:<FuzzName>": the functions go test -fuzz runs (FuzzXxx, Xxx
// not starting with a lower-case letter, no receiver, in a _test.go file).
func fuzzTargets(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") {
					continue
				}
				if r, _ := utf8.DecodeRuneInString(strings.TrimPrefix(fn.Name.Name, "Fuzz")); unicode.IsLower(r) {
					continue // Fuzzy is not a fuzz target
				}
				out = append(out, filepath.ToSlash(filepath.Dir(path))+":"+fn.Name.Name)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("list fuzz targets under %s: %v", dir, err)
		}
	}
	slices.Sort(out)
	return out
}

// TestEveryFuzzTargetIsInMakefile: make fuzz and make fuzz-long run the
// targets FUZZ_TARGETS names, one go test -fuzz per target, and nothing
// else, so a new FuzzXxx left out of it would never be fuzzed, and a target
// renamed or moved would fail only when fuzzing runs. The listing and the
// code must agree both ways.
func TestEveryFuzzTargetIsInMakefile(t *testing.T) {
	src, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	listed, _ := makeVar(string(src), "FUZZ_TARGETS")
	if len(listed) == 0 {
		t.Fatal("the Makefile sets no FUZZ_TARGETS")
	}
	found := fuzzTargets(t, "shared", "cmd", "functions")
	if len(found) == 0 {
		t.Fatal("no func FuzzXxx under shared, cmd or functions: the walk is broken")
	}
	seen := map[string]bool{}
	for _, target := range listed {
		if dir, name, ok := strings.Cut(target, ":"); !ok || dir == "" || !strings.HasPrefix(name, "Fuzz") {
			t.Errorf("FUZZ_TARGETS lists %q, want <package dir>:<FuzzName>", target)
		}
		if seen[target] {
			t.Errorf("FUZZ_TARGETS lists %s twice", target)
		}
		seen[target] = true
		if !slices.Contains(found, target) {
			t.Errorf("FUZZ_TARGETS lists %s, which is no fuzz target (renamed, moved or removed?)", target)
		}
	}
	for _, target := range found {
		if !seen[target] {
			t.Errorf("%s is not in the Makefile's FUZZ_TARGETS: make fuzz would never run it", target)
		}
	}
}
