package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// testSheetWork: an unchanged sheet's state is saved as given (its row count
// kept, no count taken); a run's sheet results come back in sheet order, the
// first put of a sheet kept; another run's are apart.
func testSheetWork(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	st := pipeline.SheetState{SheetID: 41, Name: "Crew A", Version: 9, LastScan: t0, RowCount: 3000, ColumnIDs: []int64{1, 2}}
	if err := s.SaveSheetState(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.SheetState(ctx, 41)
	if err != nil || !ok {
		t.Fatalf("SheetState(41) = %v, %v", ok, err)
	}
	if diff := cmp.Diff(st, got); diff != "" {
		t.Errorf("SheetState after SaveSheetState (-saved +read):\n%s", diff)
	}

	first := pipeline.SheetResult{RunID: "run-1", Sheet: pipeline.SheetRef{ID: 41, Name: "Crew A"}, Rows: 3000, Pages: 6, Changes: 2,
		Findings: []audit.Finding{{Kind: audit.FindingBadMoney, SheetID: 41, RowID: 7, Raw: "$1,2O0", Message: "m"}}, FinishedAt: t0}
	again := first
	again.Rows, again.Skipped = 0, true // a duplicated delivery: the sheet unchanged by then
	gone := pipeline.SheetResult{RunID: "run-1", Sheet: pipeline.SheetRef{ID: 7, Name: "Crew B"}, Failed: "not found", FinishedAt: t0}
	other := pipeline.SheetResult{RunID: "run-2", Sheet: pipeline.SheetRef{ID: 41}, FinishedAt: t0}
	for _, r := range []pipeline.SheetResult{first, gone, again, other} {
		if err := s.PutSheetResult(ctx, r); err != nil {
			t.Fatalf("PutSheetResult(%s, %d) error = %v", r.RunID, r.Sheet.ID, err)
		}
	}
	results, err := s.SheetResults(ctx, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pipeline.SheetResult{gone, first}, results); diff != "" {
		t.Errorf("SheetResults(run-1) mismatch (-want +got):\n%s", diff)
	}
	if none, err := s.SheetResults(ctx, "run-3"); err != nil || len(none) != 0 {
		t.Errorf("SheetResults(run-3) = %v, %v; want none", none, err)
	}
}
