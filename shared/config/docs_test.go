package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEverySettingIsDocumented: each variable the CLI or a function reads is
// in README.md (as `NAME`) and in .env.example (as NAME=). The names come
// from the loaders themselves, so a new setting cannot go undocumented, and
// a README rewrite cannot drop the settings table unnoticed.
func TestEverySettingIsDocumented(t *testing.T) {
	var names []string
	record := func(name string) string {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return ""
	}
	LoadFunction(record) // errors are expected: nothing is set
	if len(names) < 30 {
		t.Fatalf("the loaders read %d variables, want every setting (30 or more): %v", len(names), names)
	}
	readme := readRepoFile(t, "README.md")
	example := readRepoFile(t, ".env.example")
	for _, name := range names {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("README.md does not document `%s`", name)
		}
		if !strings.Contains(example, name+"=") {
			t.Errorf(".env.example does not list %s=", name)
		}
	}
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
