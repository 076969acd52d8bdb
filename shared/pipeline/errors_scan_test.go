package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The error paths of the scan side: fetch, scan, the local run, the
// serverless scan. Each error names the stage, its id and the step that
// failed, and still reaches its cause.

// knowSheet gives the source sheet a state and baselines for rows (one
// of them, 503, no longer on the sheet when listed).
func (f *fixture) knowSheet(rows ...int64) {
	f.mem.states[sourceID] = SheetState{SheetID: sourceID, Name: "Crew A", Version: 2, LastScan: t0.Add(-time.Hour)}
	f.mem.baselines[sourceID] = map[int64]audit.Baseline{}
	for _, id := range rows {
		f.mem.baselines[sourceID][id] = audit.Baseline{SheetID: sourceID, RowID: id, Values: map[string]string{}, SeenAt: t0.Add(-time.Hour)}
	}
}

func TestFetchSheetErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		fn    func(Batch) error // the caller's; nil: accept every batch
		want  string
	}{
		{
			name: "sheet state",
			setup: func(f *fixture) {
				f.store.SheetStateFunc = func(context.Context, int64) (SheetState, bool, error) { return SheetState{}, false, errBoom }
			},
			want: "fetch sheet 5: read its state: ",
		},
		{
			name: "baseline rows",
			setup: func(f *fixture) {
				f.knowSheet(501)
				f.store.BaselineRowIDsFunc = func(context.Context, int64) ([]int64, error) { return nil, errBoom }
			},
			want: "fetch sheet 5: read its baseline rows: ",
		},
		{
			name: "rows",
			setup: func(f *fixture) {
				f.sources.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errBoom
				}
			},
			want: "fetch sheet 5: read its rows: ",
		},
		{
			name: "row ids of deleted rows",
			setup: func(f *fixture) {
				f.knowSheet(501, 502, 503) // three baselines, two rows: list the row ids
				next, calls := f.sources.ForEachSheetPageFunc, 0
				f.sources.ForEachSheetPageFunc = func(ctx context.Context, id int64, o smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
					if calls++; calls == 2 {
						return errBoom
					}
					return next(ctx, id, o, fn)
				}
			},
			want: "fetch sheet 5: list its row ids: ",
		},
		{
			name: "the caller's error, as it is",
			fn:   func(Batch) error { return errBoom },
			want: "boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			fn := tt.fn
			if fn == nil {
				fn = func(Batch) error { return nil }
			}
			_, _, err := f.runner(t).FetchSheet(context.Background(), runR1, SheetRef{ID: sourceID}, t0, fn)
			checkErr(t, "FetchSheet(5)", err, tt.want, errBoom)
		})
	}
}

func TestScanSheetErrors(t *testing.T) {
	tests := []struct {
		name   string
		commit func(c Commit) error // the store's Commit answer
		want   string
	}{
		{
			name:   "analyze: commit the batch",
			commit: func(c Commit) error { return errBoom },
			want:   "analyze sheet 5 (run " + runR1 + "): commit ",
		},
		{
			name: "save the sheet's state",
			commit: func(c Commit) error {
				if c.State != nil {
					return errBoom
				}
				return nil
			},
			want: "scan sheet 5: save its state: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			next := f.store.CommitFunc
			f.store.CommitFunc = func(ctx context.Context, c Commit) ([]audit.Change, error) {
				if err := tt.commit(c); err != nil {
					return nil, err
				}
				return next(ctx, c)
			}
			_, err := f.runner(t).ScanSheet(context.Background(), runR1, SheetRef{ID: sourceID}, t0)
			checkErr(t, "ScanSheet(5)", err, tt.want, errBoom)
		})
	}
}

// TestRunErrors: the local run's error names the run above the stage.
func TestRunErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{
			name: "fetch",
			setup: func(f *fixture) {
				f.sources.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errBoom
				}
			},
			want: "run {run}: fetch sheet 5: read its rows: ",
		},
		{
			name:  "write the audit sheet",
			setup: func(f *fixture) { f.failLease(AuditLogLease) },
			want:  "run {run}: write audit sheet 77: take the audit-log lease: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(f)
			sum, err := f.runner(t).Run(context.Background())
			checkErr(t, "Run()", err, withIDs(tt.want, sum.Run.RunID, nil), errBoom)
			if recorded := f.mem.runs[sum.Run.RunID]; recorded.Error == "" {
				t.Errorf("run record %s has no error, want the run's", sum.Run.RunID)
			}
		})
	}
}

func TestScanToQueueErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{
			name: "discover",
			setup: func(f *fixture) {
				f.opts.SourceFolderIDs = []int64{9}
				f.sources.DiscoverSheetsFunc = func(context.Context, []int64, []int64) ([]smartsheet.DiscoveredSheet, error) { return nil, errBoom }
			},
			want: "scan run {run}: discover the sheets of folders [9]: ",
		},
		{
			name:  "record the run",
			setup: func(f *fixture) { f.store.PutRunFunc = func(context.Context, RunRecord) error { return errBoom } },
			want:  "scan run {run}: record the run: ",
		},
		{
			name: "fetch",
			setup: func(f *fixture) {
				f.sources.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errBoom
				}
			},
			want: "scan run {run}: fetch sheet 5: read its rows: ",
		},
		{
			name:  "queue a batch",
			setup: func(f *fixture) { f.queue.SendBatchFunc = func(context.Context, Batch) error { return errBoom } },
			want:  "scan run {run}: queue batch {run}/1: ",
		},
		{
			name: "seal the fan-in",
			setup: func(f *fixture) {
				f.fan.SealFunc = func(context.Context, string, int) (bool, error) { return false, errBoom }
			},
			want: "scan run {run}: seal the fan-in at 1 batches: ",
		},
		{
			name: "complete the run it claimed",
			setup: func(f *fixture) {
				f.fan.SealFunc = func(context.Context, string, int) (bool, error) { return true, nil }
				f.pub.RunCompletedFunc = func(context.Context, RunCompleted) error { return errBoom }
			},
			want: "scan run {run}: complete run {run}: publish run completed: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(f)
			run, err := f.runner(t).ScanToQueue(context.Background(), ScanRequest{}, f.queue, f.fan, f.pub)
			checkErr(t, "ScanToQueue()", err, withIDs(tt.want, run.RunID, nil), errBoom)
		})
	}
}

// analyzeBatch is a batch of the source sheet's first row, edited since its
// baseline (a quantity of 1).
func (f *fixture) analyzeBatch(batchID string) Batch {
	f.editQuantity(0, "3")
	cols := columnInfos(f.source.Columns)
	m, _ := f.opts.Audit.MapColumns(sourceID, "Crew A", cols)
	f.mem.baselines[sourceID] = map[int64]audit.Baseline{501: {SheetID: sourceID, RowID: 501, RowNumber: 1,
		Permalink: f.source.Rows[0].Permalink, SeenAt: t0.Add(-2 * time.Hour), ModifiedAt: t0.Add(-3 * time.Hour),
		Values: map[string]string{audit.ColWorkRequest: "90000001", audit.ColWeekEnding: "2026-11-29", audit.ColQuantity: "1", audit.ColPrice: "1200.00"}}}
	return Batch{ID: batchID, RunID: runR1, Sheet: SheetRef{ID: sourceID, Name: "Crew A"}, Columns: cols,
		Window: audit.ScanWindow{Previous: t0.Add(-2 * time.Hour), Current: t0}, Rows: []audit.RowSnapshot{Snapshot(sourceID, m, &f.source.Rows[0])}}
}

func TestAnalyzeErrors(t *testing.T) {
	local := "analyze sheet 5 (run " + runR1 + "): "
	tests := []struct {
		name    string
		batchID string
		setup   func(f *fixture)
		want    string
		cause   error
	}{
		{
			name:  "read the baselines",
			setup: func(f *fixture) { f.failBaselines(1) },
			want:  local + "read the baselines: ", cause: errBoom,
		},
		{
			name:  "take the commit lease",
			setup: func(f *fixture) { f.failLease(sheetLeaseName(sourceID)) },
			want:  local + "take the commit lease: ", cause: errBoom,
		},
		{
			name:  "read the baselines again",
			setup: func(f *fixture) { f.failBaselines(2) },
			want:  local + "read the baselines again under the commit lease: ", cause: errBoom,
		},
		{
			name: "renew the commit lease after re-attributing",
			setup: func(f *fixture) {
				f.moveBaselines()
				f.store.RenewLeaseFunc = func(context.Context, string, string, time.Duration) (bool, error) { return false, errBoom }
			},
			want: local + "renew the commit lease: ", cause: errBoom,
		},
		{
			name: "the commit lease lapsed",
			setup: func(f *fixture) {
				f.moveBaselines()
				f.store.RenewLeaseFunc = func(context.Context, string, string, time.Duration) (bool, error) { return false, nil }
			},
			want: local + "the commit lease lapsed while attributing; the batch is retried",
		},
		{
			name: "commit",
			setup: func(f *fixture) {
				f.store.CommitFunc = func(context.Context, Commit) ([]audit.Change, error) { return nil, errBoom }
			},
			want: local + "commit 1 changes and 1 baselines: ", cause: errBoom,
		},
		{
			name:    "commit a queued batch",
			batchID: runR1 + "/3",
			setup: func(f *fixture) {
				f.store.CommitFunc = func(context.Context, Commit) ([]audit.Change, error) { return nil, errBoom }
			},
			want: "analyze batch " + runR1 + "/3 of sheet 5: commit 1 changes and 1 baselines: ", cause: errBoom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := f.analyzeBatch(tt.batchID)
			tt.setup(f)
			_, _, err := f.runner(t).Analyze(context.Background(), b)
			checkErr(t, "Analyze("+batchLabel(b)+")", err, tt.want, tt.cause)
		})
	}
}

// failBaselines makes the nth call of Baselines fail with errBoom.
func (f *fixture) failBaselines(nth int) {
	next, calls := f.store.BaselinesFunc, 0
	f.store.BaselinesFunc = func(ctx context.Context, id int64, rows []int64) (map[int64]audit.Baseline, error) {
		if calls++; calls == nth {
			return nil, errBoom
		}
		return next(ctx, id, rows)
	}
}

// moveBaselines makes the second read of the baselines (under the commit
// lease) see the row moved by another analysis meanwhile.
func (f *fixture) moveBaselines() {
	next, calls := f.store.BaselinesFunc, 0
	f.store.BaselinesFunc = func(ctx context.Context, id int64, rows []int64) (map[int64]audit.Baseline, error) {
		got, err := next(ctx, id, rows)
		if calls++; calls == 2 {
			bl := got[501]
			bl.Generation++
			got[501] = bl
		}
		return got, err
	}
}

func TestAnalyzeBatchErrors(t *testing.T) {
	batch := runR1 + "/1"
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
		cause error
	}{
		{
			name: "read the run",
			setup: func(f *fixture) {
				f.store.RunFunc = func(context.Context, string) (RunRecord, bool, error) { return RunRecord{}, false, errBoom }
			},
			want: "analyze batch " + batch + ": read run " + runR1 + ": ", cause: errBoom,
		},
		{
			name:  "refused: its run did not scan the sheet",
			setup: func(f *fixture) { f.mem.runs[runR1] = RunRecord{RunID: runR1, Sheets: []int64{6}} },
			want:  "batch refused: batch \"" + batch + "\" of run \"" + runR1 + "\" for sheet 5: ", cause: ErrBatchRefused,
		},
		{
			name: "analyze",
			setup: func(f *fixture) {
				f.store.CommitFunc = func(context.Context, Commit) ([]audit.Change, error) { return nil, errBoom }
			},
			want: "analyze batch " + batch + " of sheet 5: commit ", cause: errBoom,
		},
		{
			name:  "write its changes",
			setup: func(f *fixture) { f.failLease(AuditLogLease) },
			want:  "analyze batch " + batch + ": write its 1 changes: write audit sheet 77: take the audit-log lease: ", cause: errBoom,
		},
		{
			name: "count it done",
			setup: func(f *fixture) {
				f.fan.BatchDoneFunc = func(context.Context, string, string) (bool, error) { return false, errBoom }
			},
			want: "analyze batch " + batch + ": count it done: ", cause: errBoom,
		},
		{
			name: "complete the run it claimed",
			setup: func(f *fixture) {
				f.fan.BatchDoneFunc = func(context.Context, string, string) (bool, error) { return true, nil }
				f.fan.FinishFunc = func(context.Context, string) error { return errBoom }
			},
			want: "complete run " + runR1 + ": finish the fan-in: ", cause: errBoom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := f.analyzeBatch(batch)
			f.mem.runs[runR1] = RunRecord{RunID: runR1, StartedAt: t0, Sheets: []int64{sourceID}}
			tt.setup(f)
			_, err := f.runner(t).AnalyzeBatch(context.Background(), b, f.fan, f.pub)
			checkErr(t, "AnalyzeBatch("+batch+")", err, tt.want, tt.cause)
		})
	}
}

func TestRefreshRowsErrors(t *testing.T) {
	tests := []struct {
		name          string
		rows, deleted []int64
		setup         func(f *fixture)
		want          string
	}{
		{
			name: "sheet state", rows: []int64{501},
			setup: func(f *fixture) {
				f.store.SheetStateFunc = func(context.Context, int64) (SheetState, bool, error) { return SheetState{}, false, errBoom }
			},
			want: "refresh rows of sheet 5: read its state: ",
		},
		{
			name: "rows", rows: []int64{501},
			setup: func(f *fixture) {
				f.knowSheet(501)
				f.sources.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errBoom
				}
			},
			want: "refresh rows of sheet 5: read 1 rows: ",
		},
		{
			name: "columns of a sheet whose rows were all deleted", deleted: []int64{501},
			setup: func(f *fixture) {
				f.knowSheet(501)
				f.sources.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, false, errBoom
				}
			},
			want: "refresh rows of sheet 5: read its columns: ",
		},
		{
			name: "baselines of deleted rows", deleted: []int64{501},
			setup: func(f *fixture) {
				f.knowSheet(501)
				f.failBaselines(1)
			},
			want: "refresh rows of sheet 5: read the baselines of 1 deleted rows: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(f)
			_, err := f.runner(t).RefreshRows(context.Background(), sourceID, tt.rows, tt.deleted)
			checkErr(t, "RefreshRows(5)", err, tt.want, errBoom)
		})
	}
}
