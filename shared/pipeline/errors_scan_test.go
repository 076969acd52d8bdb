package pipeline

import (
	"context"
	"errors"
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
	f.mem.states[sourceID] = SheetState{SheetID: sourceID, Name: "Crew A", Version: 2, LastScan: t0.Add(-time.Hour), RowCount: len(rows)}
	f.mem.baselines[sourceID] = map[int64]audit.Baseline{}
	for _, id := range rows {
		f.mem.baselines[sourceID][id] = audit.Baseline{SheetID: sourceID, RowID: id, Values: map[string]string{}, SeenAt: t0.Add(-time.Hour)}
	}
}

func TestScanSheetErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{
			name: "sheet state",
			setup: func(f *fixture) {
				f.store.SheetStateFunc = func(context.Context, int64) (SheetState, bool, error) { return SheetState{}, false, errBoom }
			},
			want: "scan sheet 5: read its state: ",
		},
		{
			name: "checkpoint",
			setup: func(f *fixture) {
				f.store.MetaFunc = func(context.Context, string) (string, bool, error) { return "", false, errBoom }
			},
			want: "scan sheet 5: read its checkpoint: ",
		},
		{
			name: "a page",
			setup: func(f *fixture) {
				f.sources.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, false, errBoom
				}
			},
			want: "scan sheet 5: read page 1: ",
		},
		{
			name: "analyze: commit the page",
			setup: func(f *fixture) {
				f.store.CommitFunc = func(context.Context, Commit) ([]audit.Change, error) { return nil, errBoom }
			},
			want: "scan sheet 5: page 1: analyze sheet 5 (run " + runR1 + "): commit ",
		},
		{
			name: "baseline rows, when rows may be gone",
			setup: func(f *fixture) {
				f.knowSheet(501, 502, 503) // three baselines, two rows: list the row ids
				f.store.BaselineRowIDsFunc = func(context.Context, int64) ([]int64, error) { return nil, errBoom }
			},
			want: "scan sheet 5: read its baseline rows: ",
		},
		{
			name: "row ids of deleted rows",
			setup: func(f *fixture) {
				f.knowSheet(501, 502, 503)
				f.sources.ForEachSheetPageFunc = func(context.Context, int64, smartsheet.GetSheetOptions, func(*smartsheet.Sheet) error) error {
					return errBoom
				}
			},
			want: "scan sheet 5: list its row ids: ",
		},
		{
			name: "save the sheet's state",
			setup: func(f *fixture) {
				next := f.store.CommitFunc
				f.store.CommitFunc = func(ctx context.Context, c Commit) ([]audit.Change, error) {
					if c.State != nil {
						return nil, errBoom
					}
					return next(ctx, c)
				}
			},
			want: "scan sheet 5: save its state: ",
		},
		{
			name: "an unchanged sheet's watermark",
			setup: func(f *fixture) {
				f.knowSheet(501, 502)
				f.sources.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, true, nil
				}
				f.store.SaveSheetStateFunc = func(context.Context, SheetState) error { return errBoom }
			},
			want: "scan sheet 5: save the state of the unchanged sheet: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(f)
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
			name: "scan",
			setup: func(f *fixture) {
				f.sources.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, false, errBoom
				}
			},
			want: "run {run}: scan sheet 5: read page 1: ",
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
			name: "queue a sheet",
			setup: func(f *fixture) {
				f.queue.SendSheetWorkFunc = func(context.Context, SheetWork) error { return errBoom }
			},
			want: "scan run {run}: queue sheet 5: ",
		},
		{
			name: "seal the fan-in",
			setup: func(f *fixture) {
				f.fan.SealFunc = func(context.Context, string, int) (bool, error) { return false, errBoom }
			},
			want: "scan run {run}: seal the fan-in at 1 sheets: ",
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
		Window: audit.ScanWindow{Previous: t0.Add(-2 * time.Hour), Current: t0}, Rows: []audit.RowSnapshot{Snapshot(sourceID, m, &f.source.Rows[0], nil)}}
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

func TestProcessSheetErrors(t *testing.T) {
	sheet := "process sheet 5 of run " + runR1 + ": "
	tests := []struct {
		name    string
		attempt int
		setup   func(f *fixture)
		want    string
		cause   error
	}{
		{
			name: "read the run",
			setup: func(f *fixture) {
				f.store.RunFunc = func(context.Context, string) (RunRecord, bool, error) { return RunRecord{}, false, errBoom }
			},
			want: sheet + "read the run: ", cause: errBoom,
		},
		{
			name:  "refused: its run did not scan the sheet",
			setup: func(f *fixture) { f.mem.runs[runR1] = RunRecord{RunID: runR1, Sheets: []int64{6}} },
			want:  sheet + "batch refused: batch \"sheet/5\" of run \"" + runR1 + "\" for sheet 5: ", cause: ErrBatchRefused,
		},
		{
			name: "a page, retried",
			setup: func(f *fixture) {
				f.sources.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, false, errBoom
				}
			},
			want: sheet + "read page 1: ", cause: errBoom,
		},
		{
			name: "analyze",
			setup: func(f *fixture) {
				f.store.CommitFunc = func(context.Context, Commit) ([]audit.Change, error) { return nil, errBoom }
			},
			want: sheet + "page 1: analyze sheet 5 (run " + runR1 + "): commit ", cause: errBoom,
		},
		{
			name:  "write its changes",
			setup: func(f *fixture) { f.failLease(AuditLogLease) },
			want:  sheet + "page 1: write its 1 changes: write audit sheet 77: take the audit-log lease: ", cause: errBoom,
		},
		{
			name: "record its result",
			setup: func(f *fixture) {
				f.store.PutSheetResultFunc = func(context.Context, SheetResult) error { return errBoom }
			},
			want: sheet + "record its result: ", cause: errBoom,
		},
		{
			name: "count it done",
			setup: func(f *fixture) {
				f.fan.BatchDoneFunc = func(context.Context, string, string) (bool, error) { return false, errBoom }
			},
			want: sheet + "count it done: ", cause: errBoom,
		},
		{
			name: "complete the run it claimed",
			setup: func(f *fixture) {
				f.fan.BatchDoneFunc = func(context.Context, string, string) (bool, error) { return true, nil }
				f.fan.FinishFunc = func(context.Context, string) error { return errBoom }
			},
			want: sheet + "complete run " + runR1 + ": finish the fan-in: ", cause: errBoom,
		},
		{
			name: "gather the results of the run it claimed",
			setup: func(f *fixture) {
				f.fan.BatchDoneFunc = func(context.Context, string, string) (bool, error) { return true, nil }
				f.store.SheetResultsFunc = func(context.Context, string) ([]SheetResult, error) { return nil, errBoom }
			},
			want: sheet + "complete run " + runR1 + ": gather the sheets' results: ", cause: errBoom,
		},
		{
			name:    "queue the rest of the sheet",
			attempt: 1,
			setup: func(f *fixture) {
				f.opts.SheetSlice = time.Nanosecond // a slice over after the first page
				f.opts.PageSize = 1                 // two pages
				f.queue.SendSheetWorkFunc = func(context.Context, SheetWork) error { return errBoom }
			},
			want: sheet + "queue the rest of the sheet: ", cause: errBoom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.analyzeBatch("") // the first row edited since its baseline
			f.mem.runs[runR1] = RunRecord{RunID: runR1, StartedAt: t0, Sheets: []int64{sourceID}}
			tt.setup(f)
			w := SheetWork{RunID: runR1, Sheet: SheetRef{ID: sourceID, Name: "Crew A"}, StartedAt: t0, Attempt: max(tt.attempt, 1)}
			_, err := f.runner(t).ProcessSheet(context.Background(), w, f.queue, f.fan, f.pub)
			checkErr(t, "ProcessSheet(5)", err, tt.want, tt.cause)
		})
	}
}

// TestProcessSheetGivesUpAnUnreadableSheet: a sheet gone or unshared — or
// failing delivery after delivery — is a finding on the run and counts as
// done, so the run completes and the other sheets are audited.
func TestProcessSheetGivesUpAnUnreadableSheet(t *testing.T) {
	gone := &smartsheet.APIError{StatusCode: 404, ErrorCode: smartsheet.CodeNotFound, Message: "Not Found"}
	tests := []struct {
		name    string
		err     error
		attempt int
		wantErr bool // retried (the delivery fails) rather than given up
	}{
		{name: "not found (1006)", err: gone, attempt: 1},
		{name: "a failure, first delivery: retried", err: errBoom, attempt: 1, wantErr: true},
		{name: "a failure, last delivery: given up", err: errBoom, attempt: maxSheetAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.mem.runs[runR1] = RunRecord{RunID: runR1, StartedAt: t0, Sheets: []int64{sourceID}}
			f.sources.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
				return nil, false, tt.err
			}
			w := SheetWork{RunID: runR1, Sheet: SheetRef{ID: sourceID, Name: "Crew A"}, StartedAt: t0, Attempt: tt.attempt}
			res, err := f.runner(t).ProcessSheet(context.Background(), w, f.queue, f.fan, f.pub)
			if tt.wantErr {
				if !errors.Is(err, tt.err) {
					t.Errorf("ProcessSheet() error = %v, want %v (retried)", err, tt.err)
				}
				return
			}
			if err != nil || res.Failed == "" || len(res.Findings) != 1 || res.Findings[0].Kind != audit.FindingSheetUnreadable {
				t.Fatalf("ProcessSheet() = %+v, %v; want the sheet given up with a SHEET_UNREADABLE finding", res, err)
			}
			if got := f.mem.results[runR1][sourceID]; got.Failed == "" {
				t.Errorf("recorded result = %+v, want the failure", got)
			}
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
