package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

const (
	sourceID = int64(5)
	auditID  = int64(77)
	runR1    = "20261130T150000Z-c0ffee"
)

// fixture is a Runner's world made of fakes: one source sheet, the audit
// sheet, the store, the fan-in and the publisher, each in memory until a
// test breaks one call.
type fixture struct {
	store    *fakeStore
	mem      *memStore
	source   *smartsheet.Sheet
	sources  *fakeSources
	sheet    *fakeAuditSheet
	sheetMem *memAuditSheet
	fan      *fakeFanIn
	pub      *fakePublisher
	queue    *fakeQueue
	opts     Options
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	store, mem := newFakeStore()
	sheet, sheetMem := newFakeAuditSheet(auditID)
	f := &fixture{
		store: store, mem: mem, source: sourceSheet(), sheet: sheet, sheetMem: sheetMem, fan: newFakeFanIn(),
		pub:   &fakePublisher{RunCompletedFunc: func(context.Context, RunCompleted) error { return nil }},
		queue: &fakeQueue{SendSheetWorkFunc: func(context.Context, SheetWork) error { return nil }},
		opts: Options{Audit: audit.DefaultConfig(), SourceSheetIDs: []int64{sourceID}, AuditSheetID: auditID,
			Clock: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler),
			LeaseWait: 100 * time.Millisecond, ReadBackDelay: time.Millisecond},
	}
	f.sources = newFakeSources(f.source)
	return f
}

// runner builds the Runner from the fixture's ports as they are now.
func (f *fixture) runner(tb testing.TB) *Runner {
	tb.Helper()
	r, err := newRunner(f.sources, f.sheet, f.store, f.opts)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// sourceSheet is a source sheet of two billable rows.
func sourceSheet() *smartsheet.Sheet {
	cols := []smartsheet.Column{
		{ID: 11, Title: audit.ColWorkRequest, Type: smartsheet.TypeTextNumber, Primary: true},
		{ID: 12, Title: audit.ColWeekEnding, Type: smartsheet.TypeDate},
		{ID: 13, Title: audit.ColQuantity, Type: smartsheet.TypeTextNumber},
		{ID: 14, Title: audit.ColPrice, Type: smartsheet.TypeTextNumber},
	}
	return &smartsheet.Sheet{ID: sourceID, Name: "Crew A", Version: 3, TotalRowCount: 2, Columns: cols, Rows: []smartsheet.Row{
		sourceRow(501, 1, "90000001", "2"), sourceRow(502, 2, "90000002", "4"),
	}}
}

func sourceRow(id int64, n int, wr, qty string) smartsheet.Row {
	at := t0.Add(-3 * time.Hour)
	return smartsheet.Row{ID: id, RowNumber: n, ModifiedAt: &at, ModifiedBy: &smartsheet.User{Email: "kim@fieldops.example.com", Name: "Kim Lee"},
		Permalink: "https://app.smartsheet.com/r/" + wr, Cells: []smartsheet.Cell{
			{ColumnID: 11, Value: smartsheet.StringValue(wr)},
			{ColumnID: 12, Value: smartsheet.StringValue("2026-11-29")},
			{ColumnID: 13, Value: smartsheet.StringValue(qty)},
			{ColumnID: 14, Value: smartsheet.StringValue("1200.00")},
		}}
}

// editQuantity sets a source row's quantity, as someone editing the sheet at
// t0-1h.
func (f *fixture) editQuantity(row int, qty string) {
	at := t0.Add(-time.Hour)
	f.source.Rows[row].ModifiedAt = &at
	f.source.Rows[row].Cells[2].Value = smartsheet.StringValue(qty)
	f.source.Version++
}

// mustRecordChanges scans the source sheet (its baselines), edits both rows'
// quantities and scans again: the changes are recorded, not yet written. It
// returns them in ledger order.
func (f *fixture) mustRecordChanges(tb testing.TB) []audit.Change {
	tb.Helper()
	ctx := context.Background()
	r := f.runner(tb)
	ref := SheetRef{ID: sourceID}
	if _, err := r.ScanSheet(ctx, "20261130T130000Z-000001", ref, t0.Add(-2*time.Hour)); err != nil {
		tb.Fatalf("first scan: %v", err)
	}
	f.editQuantity(0, "3")
	f.editQuantity(1, "5")
	out, err := r.ScanSheet(ctx, "20261130T150000Z-000002", ref, t0)
	if err != nil {
		tb.Fatalf("second scan: %v", err)
	}
	if len(out.Changes) == 0 {
		tb.Fatal("second scan recorded no change")
	}
	recs, _ := f.mem.Pending(ctx)
	changes := make([]audit.Change, len(recs))
	for i, rec := range recs {
		changes[i] = rec.Change
	}
	return changes
}

// mustPublish records changes and writes them to the audit sheet.
func (f *fixture) mustPublish(tb testing.TB) []audit.Change {
	tb.Helper()
	changes := f.mustRecordChanges(tb)
	if _, err := f.runner(tb).WriteAudit(context.Background()); err != nil {
		tb.Fatalf("WriteAudit() = %v", err)
	}
	return changes
}

// failMeta makes Meta of key fail with errBoom.
func (f *fixture) failMeta(key string) {
	next := f.store.MetaFunc
	f.store.MetaFunc = func(ctx context.Context, k string) (string, bool, error) {
		if k == key {
			return "", false, errBoom
		}
		return next(ctx, k)
	}
}

// failPutMeta makes PutMeta of key fail with errBoom when match accepts the
// value (nil: any value).
func (f *fixture) failPutMeta(key string, match func(string) bool) {
	next := f.store.PutMetaFunc
	f.store.PutMetaFunc = func(ctx context.Context, k, v string) error {
		if k == key && (match == nil || match(v)) {
			return errBoom
		}
		return next(ctx, k, v)
	}
}

// failLease makes AcquireLease of the lease name fail with errBoom.
func (f *fixture) failLease(name string) {
	next := f.store.AcquireLeaseFunc
	f.store.AcquireLeaseFunc = func(ctx context.Context, n, holder string, ttl time.Duration) (bool, error) {
		if n == name {
			return false, errBoom
		}
		return next(ctx, n, holder, ttl)
	}
}

// withIDs fills a want's placeholders: {run}, and {first} and {last}, the first
// and last of changes.
func withIDs(want, runID string, changes []audit.Change) string {
	first, last := "", ""
	if len(changes) > 0 {
		first, last = changes[0].ChangeID, changes[len(changes)-1].ChangeID
	}
	return strings.NewReplacer("{run}", runID, "{first}", first, "{last}", last).Replace(want)
}

// checkErr fails unless err begins with want (the stage, its id, and the
// step that failed) and, when cause is not nil, errors.Is reaches cause
// through every wrap.
func checkErr(tb testing.TB, call string, err error, want string, cause error) {
	tb.Helper()
	switch {
	case err == nil:
		tb.Fatalf("%s = nil error, want %q…", call, want)
	case !strings.HasPrefix(err.Error(), want):
		tb.Errorf("%s = %q, want %q…", call, err, want)
	case cause != nil && !errors.Is(err, cause):
		tb.Errorf("errors.Is(%s = %q, %v) = false, want true", call, err, cause)
	}
}
