package storetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// changeAt is change(id, row) detected at the given time.
func changeAt(id string, row int64, at time.Time) audit.Change {
	c := change(id, row)
	c.DetectedAt = at
	return c
}

func ids(rs []pipeline.ChangeRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Change.ChangeID
	}
	slices.Sort(out)
	return out
}

// testChangesRange: Changes(from, to) is [from, to) on the detection time,
// over months, whether the changes are written or still pending.
func testChangesRange(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	oct := time.Date(2026, 10, 31, 23, 59, 59, 999_000_000, time.UTC)
	nov1 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dec := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	jan := time.Date(2027, 1, 2, 8, 0, 0, 0, time.UTC)
	all := []audit.Change{changeAt("oct", 1, oct), changeAt("nov1", 2, nov1), changeAt("nov25", 3, t0), changeAt("dec", 4, dec), changeAt("jan", 5, jan)}
	if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: all}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkWritten(ctx, pipeline.WrittenIDs("oct", "nov25", "jan")); err != nil { // nov1 and dec stay pending
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"all", time.Time{}, time.Time{}, []string{"dec", "jan", "nov1", "nov25", "oct"}},
		{"from is inclusive", nov1, time.Time{}, []string{"dec", "jan", "nov1", "nov25"}},
		{"to is exclusive", time.Time{}, nov1, []string{"oct"}},
		{"one month", nov1, nov1.AddDate(0, 1, 0), []string{"nov1", "nov25"}},
		{"exact instant", t0, t0.Add(time.Nanosecond), []string{"nov25"}},
		{"empty at the instant", t0, t0, []string{}},
		{"across the year", dec, jan.Add(time.Second), []string{"dec", "jan"}},
		{"before all", time.Time{}, oct.Add(-time.Hour), []string{}},
		{"after all", jan.Add(time.Millisecond), time.Time{}, []string{}},
	}
	for _, tt := range tests {
		got, err := s.Changes(ctx, tt.from, tt.to)
		if err != nil {
			t.Fatalf("Changes(%s) error %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("Changes(%s: %v, %v) (-want +got):\n%s", tt.name, tt.from, tt.to, diff)
		}
	}
	got, _ := s.Changes(ctx, time.Time{}, time.Time{})
	for _, r := range got {
		want := r.Change.ChangeID == "oct" || r.Change.ChangeID == "nov25" || r.Change.ChangeID == "jan"
		if r.Written != want {
			t.Errorf("change %s Written = %v, want %v", r.Change.ChangeID, r.Written, want)
		}
		if r.RecordedAt.IsZero() {
			t.Errorf("change %s has no RecordedAt", r.Change.ChangeID)
		}
	}
	if err := s.MarkWritten(ctx, pipeline.WrittenIDs("no-such-change")); err == nil {
		t.Error("MarkWritten(unknown id) = nil, want an error")
	}
	if err := s.MarkWritten(ctx, pipeline.WrittenIDs("oct")); err != nil {
		t.Errorf("MarkWritten(already written) = %v, want nil", err)
	}
}

// testManyRows: commits larger than one request of a remote store (100
// changes per transaction, 25 baselines per batch write, 100 keys per batch
// get), with duplicates inside a commit and across commits.
func testManyRows(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	const n = 260
	var changes []audit.Change
	var bls []audit.Baseline
	var rows []int64
	for i := range n {
		row := int64(i+1) * 7
		rows = append(rows, row)
		changes = append(changes, change(fmt.Sprintf("c%03d", i), row))
		bls = append(bls, audit.Baseline{SheetID: 9, RowID: row, RowNumber: i + 1,
			Values: map[string]string{"Quantity": strconv.Itoa(i), "Notes": strings.Repeat("x", 200)}, SeenAt: t0})
	}
	first := append(slices.Clone(changes[:150]), changes[3]) // a Change ID twice in one commit
	fresh, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: first, PutBaselines: bls[:150]})
	if err != nil || len(fresh) != 150 {
		t.Fatalf("Commit(150 changes, one twice) = %d fresh, %v; want 150", len(fresh), err)
	}
	st := pipeline.SheetState{SheetID: 9, Name: "Crew A", Version: 3, LastScan: t0}
	fresh, err = s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: changes, PutBaselines: bls, DeleteBaselines: rows[:10], State: &st})
	if err != nil || len(fresh) != n-150 {
		t.Fatalf("Commit(all %d) = %d fresh, %v; want %d", n, len(fresh), err, n-150)
	}
	if fresh[0].ChangeID != "c150" || fresh[len(fresh)-1].ChangeID != fmt.Sprintf("c%03d", n-1) {
		t.Errorf("fresh changes are %s…%s, want c150…c%03d in commit order", fresh[0].ChangeID, fresh[len(fresh)-1].ChangeID, n-1)
	}
	got, ok, err := s.SheetState(ctx, 9)
	if err != nil || !ok || got.RowCount != n-10 {
		t.Errorf("SheetState().RowCount = %d (%v, %v), want %d", got.RowCount, ok, err, n-10)
	}
	ids, err := s.BaselineRowIDs(ctx, 9)
	if err != nil || len(ids) != n-10 {
		t.Fatalf("BaselineRowIDs() = %d ids, %v; want %d", len(ids), err, n-10)
	}
	bm, err := s.Baselines(ctx, 9, append(slices.Clone(rows), rows[20], 999_999))
	if err != nil || len(bm) != n-10 {
		t.Fatalf("Baselines(all rows) = %d, %v; want %d", len(bm), err, n-10)
	}
	if diff := cmp.Diff(bls[200], bm[rows[200]]); diff != "" {
		t.Errorf("Baselines()[%d] (-want +got):\n%s", rows[200], diff)
	}
	pending, err := s.Pending(ctx)
	if err != nil || len(pending) != n {
		t.Fatalf("Pending() = %d, %v; want %d", len(pending), err, n)
	}
	for i := 1; i < len(pending); i++ {
		if pending[i].RecordedAt.Before(pending[i-1].RecordedAt) {
			t.Fatalf("Pending() not oldest first at %d", i)
		}
	}
}
