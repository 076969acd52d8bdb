// Package lambdaapptest helps the functions' handler tests drive every sample
// event in events/<function>/ through their handlers. It lives apart from
// lambdaapp so that no release binary links testing.
package lambdaapptest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// EventsDir is events/<function> at the module root, found by walking up from
// the test's working directory to go.mod.
func EventsDir(tb testing.TB, function string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "events", function)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("no go.mod above the test's directory: cannot find events/%s", function)
		}
		dir = parent
	}
}

// MustEvent is the bytes of events/<function>/<name>.
func MustEvent(tb testing.TB, function, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(EventsDir(tb, function), name))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// Samples are the file names of events/<function>/*.json, sorted.
func Samples(tb testing.TB, function string) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(EventsDir(tb, function), "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// RequireEverySample fails for each sample in events/<function>/ that no name
// in covered is (a sample no test reads is a sample nobody knows still
// works), and for each covered name with no sample (a test that reads a file
// since removed or renamed). Empty names (cases without a sample) are skipped.
func RequireEverySample(tb testing.TB, function string, covered []string) {
	tb.Helper()
	samples := Samples(tb, function)
	if len(samples) == 0 {
		tb.Errorf("events/%s holds no sample", function)
	}
	for _, s := range samples {
		if !slices.Contains(covered, s) {
			tb.Errorf("events/%s/%s is read by no test case: add one to the %s handler's table", function, s, function)
		}
	}
	for _, c := range covered {
		if c != "" && !slices.Contains(samples, c) {
			tb.Errorf("a test case names events/%s/%s, which does not exist", function, c)
		}
	}
}
