// Package sdkscenario loads the request/response pairs of Smartsheet's own
// SDK test suite from ../shared/smartsheet/sdk-test-scenarios, for the
// conformance tests of the client and of the simulator.
package sdkscenario

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Scenario is one request/response pair.
type Scenario struct {
	Scenario string `json:"scenario"`
	Request  struct {
		Method          string            `json:"method"`
		URLPath         string            `json:"urlPath"`
		Headers         map[string]string `json:"headers"`
		QueryParameters map[string]string `json:"queryParameters"`
		Body            json.RawMessage   `json:"body"`
	} `json:"request"`
	Response struct {
		Status   int             `json:"status"`
		JSONBody json.RawMessage `json:"jsonBody"`
	} `json:"response"`
}

// File is one scenario file: its base name without "_scenarios.json", and
// its scenarios.
type File struct {
	Name      string
	Scenarios []Scenario
}

// Dir finds the scenarios beside the module root (the folder holding go.mod),
// or skips the test with a message saying where it looked.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("no go.mod above the test directory; cannot locate ../shared/smartsheet")
		}
		dir = parent
	}
	sd := filepath.Join(dir, "..", "shared", "smartsheet", "sdk-test-scenarios")
	if _, err := os.Stat(sd); err != nil {
		tb.Skipf("SDK test scenarios not found at %s (CI keeps ../shared beside the checkout): %v", sd, err)
	}
	return sd
}

// Load reads every scenario file, in name order.
func Load(tb testing.TB) []File {
	tb.Helper()
	dir := Dir(tb)
	paths, err := filepath.Glob(filepath.Join(dir, "*_scenarios.json"))
	if err != nil || len(paths) == 0 {
		tb.Skipf("no scenario files in %s", dir)
	}
	sort.Strings(paths)
	var out []File
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		f := File{Name: filepath.Base(p)[:len(filepath.Base(p))-len("_scenarios.json")]}
		if err := json.Unmarshal(data, &f.Scenarios); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		out = append(out, f)
	}
	return out
}
