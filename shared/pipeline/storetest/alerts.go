package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// testAlertLog: a delivered alert is recorded per channel, once (the first
// time is kept), and only the ids asked about come back — over more ids
// than one batch read holds.
func testAlertLog(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	got, err := s.AlertsSent(ctx, "slack", []string{"c1", "c2"})
	if err != nil || len(got) != 0 {
		t.Fatalf("AlertsSent(empty store) = %v, %v, want none", got, err)
	}
	t1, t2 := t0.Add(time.Minute), t0.Add(time.Hour)
	if err := s.MarkAlertsSent(ctx, "slack", []string{"c1", "c2"}, t1); err != nil {
		t.Fatalf("MarkAlertsSent: %v", err)
	}
	// Again, later, with a new one: c1 and c2 keep their first time.
	if err := s.MarkAlertsSent(ctx, "slack", []string{"c2", "c3"}, t2); err != nil {
		t.Fatalf("MarkAlertsSent again: %v", err)
	}
	tests := []struct {
		name    string
		channel string
		ids     []string
		want    map[string]time.Time
	}{
		{name: "first time kept", channel: "slack", ids: []string{"c1", "c2", "c3", "c4"},
			want: map[string]time.Time{"c1": t1, "c2": t1, "c3": t2}},
		{name: "only the ids asked", channel: "slack", ids: []string{"c3"}, want: map[string]time.Time{"c3": t2}},
		{name: "per channel", channel: "teams", ids: []string{"c1", "c2", "c3"}, want: map[string]time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AlertsSent(ctx, tt.channel, tt.ids)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("AlertsSent(%s, %v) -want +got:\n%s", tt.channel, tt.ids, d)
			}
		})
	}
	// A digest's worth of ids (more than one BatchGetItem).
	var many []string
	for i := range 150 {
		many = append(many, fmt.Sprintf("d%03d", i))
	}
	if err := s.MarkAlertsSent(ctx, "teams", many, t1); err != nil {
		t.Fatalf("MarkAlertsSent(150): %v", err)
	}
	got, err = s.AlertsSent(ctx, "teams", append(many, "c1"))
	if err != nil || len(got) != len(many) {
		t.Fatalf("AlertsSent(151) = %d ids, %v, want %d", len(got), err, len(many))
	}
}
