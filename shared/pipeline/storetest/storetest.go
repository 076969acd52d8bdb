// Package storetest is the contract every pipeline.Store must meet: the
// embedded bbolt store and the DynamoDB store run the same suite.
package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// Run runs the contract against stores made by open (a fresh, empty store each call).
func Run(t *testing.T, open func(t *testing.T) pipeline.Store) {
	t.Run("SheetState", func(t *testing.T) { testSheetState(t, open(t)) })
	t.Run("Baselines", func(t *testing.T) { testBaselines(t, open(t)) })
	t.Run("ChangesOnce", func(t *testing.T) { testChangesOnce(t, open(t)) })
	t.Run("Runs", func(t *testing.T) { testRuns(t, open(t)) })
	t.Run("Meta", func(t *testing.T) { testMeta(t, open(t)) })
	t.Run("ChangesRange", func(t *testing.T) { testChangesRange(t, open(t)) })
	t.Run("ManyRows", func(t *testing.T) { testManyRows(t, open(t)) })
	t.Run("Ledger", func(t *testing.T) { testLedger(t, open(t)) })
	t.Run("SealAndWrite", func(t *testing.T) { testSealAndWrite(t, open(t)) })
	t.Run("SheetWork", func(t *testing.T) { testSheetWork(t, open(t)) })
	t.Run("AlertLog", func(t *testing.T) { testAlertLog(t, open(t)) })
}

var t0 = time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)

func testSheetState(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	if _, ok, err := s.SheetState(ctx, 42); err != nil || ok {
		t.Fatalf("SheetState(unknown) = ok %v, err %v; want false, nil", ok, err)
	}
	st := pipeline.SheetState{SheetID: 42, Name: "Crew A", Version: 7, LastScan: t0, Permalink: "https://x/s/42", ColumnIDs: []int64{1, 2}, ColumnsFor: "abc"}
	bl := audit.Baseline{SheetID: 42, RowID: 5, Values: map[string]string{"Quantity": "3"}, SeenAt: t0}
	if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 42, PutBaselines: []audit.Baseline{bl}, State: &st}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.SheetState(ctx, 42)
	if err != nil || !ok {
		t.Fatalf("SheetState(42) = ok %v, err %v", ok, err)
	}
	want := st
	want.RowCount = 1
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SheetState(42) (-want +got):\n%s", diff)
	}
}

func testBaselines(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	var put []audit.Baseline
	for i := int64(1); i <= 30; i++ {
		put = append(put, audit.Baseline{SheetID: 9, RowID: i * 1000, RowNumber: int(i), Permalink: "p",
			Values: map[string]string{"Quantity": "1", "Units Total Price": "12.50"}, WeekEnding: t0.Truncate(24 * time.Hour), SeenAt: t0})
	}
	if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, PutBaselines: put}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, DeleteBaselines: []int64{2000, 3000}}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.BaselineRowIDs(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if len(ids) != 28 || slices.Contains(ids, 2000) || ids[0] != 1000 {
		t.Errorf("BaselineRowIDs = %v, want 28 ids without 2000 and 3000", ids)
	}
	got, err := s.Baselines(ctx, 9, []int64{1000, 2000, 30000, 777})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Baselines() returned %d rows, want 2", len(got))
	}
	if diff := cmp.Diff(put[0], got[1000]); diff != "" {
		t.Errorf("Baselines()[1000] (-want +got):\n%s", diff)
	}
	if other, _ := s.BaselineRowIDs(ctx, 10); len(other) != 0 {
		t.Errorf("BaselineRowIDs(other sheet) = %v, want none", other)
	}
}

func change(id string, row int64) audit.Change {
	d := decimal.RequireFromString("200.00")
	at := t0.Add(-time.Hour)
	return audit.Change{ChangeID: id, RunID: "run-1", Kind: audit.KindValueChanged, SheetID: 9, SheetName: "Crew A", RowID: row, RowNumber: int(row),
		Column: "Units Total Price", OldValue: "1000", NewValue: "1200", Delta: &d, Impact: d, Risk: audit.RiskMedium,
		Status: audit.StatusUnauthorized, DetectedAt: t0, WeekEnding: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Attribution: audit.Attribution{User: "kim@x", Time: &at, Source: audit.SourceWriterInfo}}
}

func testChangesOnce(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	a, b := change("a1", 1), change("b2", 2)
	fresh, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: []audit.Change{a, b}})
	if err != nil || len(fresh) != 2 {
		t.Fatalf("Commit() = %d fresh, %v; want 2", len(fresh), err)
	}
	again := change("a1", 1)
	again.RunID = "run-2"
	fresh, err = s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: []audit.Change{again, change("c3", 3)}})
	if err != nil || len(fresh) != 1 || fresh[0].ChangeID != "c3" {
		t.Fatalf("Commit(again) = %v, %v; want only c3 fresh", fresh, err)
	}
	pending, err := s.Pending(ctx)
	if err != nil || len(pending) != 3 {
		t.Fatalf("Pending() = %d, %v; want 3", len(pending), err)
	}
	if pending[0].Change.RunID != "run-1" {
		t.Errorf("a recorded change was overwritten: run %s", pending[0].Change.RunID)
	}
	if diff := cmp.Diff(a, pending[0].Change); diff != "" {
		t.Errorf("recorded change round trip (-want +got):\n%s", diff)
	}
	if err := s.MarkWritten(ctx, pipeline.WrittenIDs("a1", "c3")); err != nil {
		t.Fatal(err)
	}
	pending, _ = s.Pending(ctx)
	if len(pending) != 1 || pending[0].Change.ChangeID != "b2" {
		t.Errorf("Pending() after MarkWritten = %v, want b2", pending)
	}
	all, err := s.Changes(ctx, time.Time{}, time.Time{})
	if err != nil || len(all) != 3 {
		t.Fatalf("Changes(all) = %d, %v", len(all), err)
	}
	written := 0
	for _, r := range all {
		if r.Written {
			written++
		}
	}
	if written != 2 {
		t.Errorf("%d changes written, want 2", written)
	}
	if none, _ := s.Changes(ctx, t0.Add(time.Minute), time.Time{}); len(none) != 0 {
		t.Errorf("Changes(after detection) = %d, want 0", len(none))
	}
}

func testRuns(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	for i := range 3 {
		r := pipeline.RunRecord{RunID: "20261125T15000" + string(rune('0'+i)) + "Z-abc", StartedAt: t0.Add(time.Duration(i) * time.Hour), Changes: i,
			APICalls: map[string]int{"GET /sheets/{sheetId}": i + 1}}
		if err := s.PutRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.Runs(ctx, 2)
	if err != nil || len(runs) != 2 || runs[0].RunID != "20261125T150002Z-abc" || runs[1].RunID != "20261125T150001Z-abc" {
		t.Fatalf("Runs(2) = %+v, %v; want the two newest, newest first", runs, err)
	}
	one, ok, err := s.Run(ctx, "20261125T150001Z-abc")
	if err != nil || !ok || one.Changes != 1 {
		t.Errorf("Run(id) = %+v, %v, %v", one, ok, err)
	}
	if _, ok, err := s.Run(ctx, "nope"); ok || err != nil {
		t.Errorf("Run(unknown) = %v, %v; want false, nil", ok, err)
	}
	if runs[0].APICalls["GET /sheets/{sheetId}"] != 3 {
		t.Errorf("run record lost its API calls: %+v", runs[0])
	}
}

func testMeta(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	if _, ok, err := s.Meta(ctx, "k"); ok || err != nil {
		t.Fatalf("Meta(unset) = %v, %v", ok, err)
	}
	if err := s.PutMeta(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Meta(ctx, "k"); v != "v2" || !ok || err != nil {
		t.Errorf("Meta(k) = %q, %v, %v; want v2", v, ok, err)
	}
}
