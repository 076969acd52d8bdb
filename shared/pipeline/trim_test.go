package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// TestScanTrimsColumns: a scan after the first reads every column only when
// writer info may name a cell change's author (the print of the row's other
// cells proves it); with webhooks on every sheet or SkipWriterInfo it reads
// the mapped columns alone.
func TestScanTrimsColumns(t *testing.T) {
	tests := []struct {
		name        string
		callbackURL string
		skipWriter  bool
		wantTrimmed bool
	}{
		{name: "no webhooks: every column, for writer info", wantTrimmed: false},
		{name: "webhooks on every sheet", callbackURL: "https://hooks.example.com/webhooks/smartsheet/k", wantTrimmed: true},
		{name: "SkipWriterInfo", skipWriter: true, wantTrimmed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.opts.WebhookCallbackURL, f.opts.SkipWriterInfo = tt.callbackURL, tt.skipWriter
			var asked [][]int64
			page := f.sources.ForEachSheetPageFunc
			f.sources.ForEachSheetPageFunc = func(ctx context.Context, id int64, opts smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
				asked = append(asked, opts.ColumnIDs)
				return page(ctx, id, opts, fn)
			}
			get := f.sources.GetSheetFunc
			f.sources.GetSheetFunc = func(ctx context.Context, id int64, opts smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
				asked = append(asked, opts.ColumnIDs)
				return get(ctx, id, opts)
			}
			r := f.runner(t)
			ref := SheetRef{ID: sourceID}
			if _, err := r.ScanSheet(context.Background(), "20261130T130000Z-000001", ref, t0.Add(-2*time.Hour)); err != nil {
				t.Fatalf("baseline scan: %v", err)
			}
			f.source.Version++
			asked = nil
			if _, err := r.ScanSheet(context.Background(), "20261130T150000Z-000002", ref, t0); err != nil {
				t.Fatalf("second scan: %v", err)
			}
			if len(asked) == 0 {
				t.Fatal("the second scan read no page")
			}
			for i, cols := range asked {
				if got := len(cols) > 0; got != tt.wantTrimmed {
					t.Errorf("page %d read columns %v: trimmed = %v, want %v", i, cols, got, tt.wantTrimmed)
				}
			}
		})
	}
}
