package lambdaapptest

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that keeps its errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestRequireEverySample(t *testing.T) {
	tests := []struct {
		name     string
		covered  []string
		wantErrs int
	}{
		{name: "all covered", covered: []string{"challenge.json", "callback.json"}},
		{name: "all covered, cases without a sample too", covered: []string{"challenge.json", "", "callback.json", ""}},
		{name: "one sample unread", covered: []string{"callback.json"}, wantErrs: 1},
		{name: "none read", covered: nil, wantErrs: 2},
		{name: "a case names a missing file", covered: []string{"challenge.json", "callback.json", "gone.json"}, wantErrs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			RequireEverySample(r, "webhook", tt.covered)
			if got := len(r.errs); got != tt.wantErrs {
				t.Errorf("RequireEverySample(webhook, %q) reported %d problems %q, want %d", tt.covered, got, r.errs, tt.wantErrs)
			}
		})
	}
}

func TestSamples(t *testing.T) {
	for fn, want := range map[string]int{"scan": 4, "analyze": 2, "report": 2, "webhook": 2} {
		if got := Samples(t, fn); len(got) < want {
			t.Errorf("Samples(%s) = %q, want at least %d", fn, got, want)
		}
	}
}
